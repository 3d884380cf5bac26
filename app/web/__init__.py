"""HTTP and websockets: routes, pages and the live stream, which translate requests into
calls on the run manager."""
