"""Everything that runs inside the OpenTelemetry SDK: the processor, the seam, autoconfig."""
