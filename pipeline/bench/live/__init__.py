"""`cctv bench-live`: the live service measured from outside, as an operator would see it.

A real `cctv serve` subprocess (`process`) runs the site config on a fresh data dir. Phase 1 watches it
(`watch`): every camera's analysis rate, drops and lag from `/api/cameras`, event latency, CPU and RSS of the
service process. Phase 2 adds API load from a second process (`load`) while the cameras keep running. `report`
turns what was seen into figures and a table, `plot` into a picture; `run` puts the phases in order. Speed is
reported here, never asserted by tests.
"""
