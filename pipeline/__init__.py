"""AI CCTV selective monitoring: frames -> detections -> tracks -> rule hits -> events."""

__version__ = "0.1.0"
