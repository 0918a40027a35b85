"""Local emulators of the HTTP APIs the kit cannot reach from tests (Google, GitHub)."""
