"""Reports in their JSON form: the stream schema, text and SARIF renderings, `racewatch report`."""
