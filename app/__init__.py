"""synthgrad's live server: run manager (threads, no HTTP), SQLite store, HTTP, websockets."""
