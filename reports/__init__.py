"""Report renderers: table, json, markdown, junit."""
