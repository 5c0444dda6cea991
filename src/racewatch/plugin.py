"""pytest plugin entry point; kept import-light so loading pytest imports nothing else of racewatch."""
