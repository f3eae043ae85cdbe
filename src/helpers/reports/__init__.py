"""Layer 3: matplotlib figures and the Jinja2 HTML pages. Imports core, stats and modeling only."""
