"""The records of a run: the episode log, bags (recorder, message types), the bag importer and the report."""
