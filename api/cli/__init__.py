"""The `openautoglm` command line; `main.main` is its entry point."""
