"""Rule modules: one file per concern, pure judge functions (see ARCHITECTURE.md §4a)."""
