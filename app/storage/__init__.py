"""Storage: the SQLite store of runs and records, its codec, migrations, purger and the
selection of records for export."""
