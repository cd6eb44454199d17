"""Demo telemetry (filled in below)."""
