"""Route handlers, one module per resource; each checks the caller's role and calls a service once or twice."""
