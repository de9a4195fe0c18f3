"""Custom Speech Autopilot: the function app's package (decisions in pure modules, I/O at the edges)."""
