"""Tool calls in the shapes other tools write (OpenAI, glaive, Python call syntax), read into one form."""
