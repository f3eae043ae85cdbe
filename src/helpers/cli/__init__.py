"""Layer 7: the driftgate subcommands: parse, call one function, print, exit code."""
