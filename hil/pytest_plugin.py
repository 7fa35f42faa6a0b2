"""pytest plugin for embbert-hil (entry point `pytest11`): options, fixtures and markers."""
