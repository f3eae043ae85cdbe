"""Layer 4: the scoring service: protocol, input schema, model loading, batching scorer, HTTP
transport, client, replay, smoke test and capture store."""
