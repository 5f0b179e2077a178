"""Launch files, graph descriptions, parameter files and the samrl command."""
