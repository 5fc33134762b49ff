"""What every eucasim service shares: configuration, database, signatures, codecs, errors,
the internal client, the messages that cross service borders, tracing and the launcher."""
