"""The ground floor: errors, the workspace and its paths, state files, processes, the registry, run events."""
