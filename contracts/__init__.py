"""What the layers exchange: payloads, names on the wire (workflow ids, activity and signal names,
search attributes) and failure codes. Imports nothing else from the project, so that workflows,
activities, the API and the database layer can all depend on it and on nothing of each other's."""
