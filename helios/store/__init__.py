"""Storage: bucket files (records, layout on disk), indexes and archives."""
