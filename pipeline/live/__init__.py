"""Live service: camera workers, the shared detector and the event fan-out."""
