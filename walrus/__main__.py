"""`python -m walrus`: serve Walrus with uvicorn as configured (HTTPS when PUBLIC_HTTPS)."""

from __future__ import annotations

import uvicorn

from services.config import load_config
from walrus.app import server_options


def main() -> None:
    config = load_config()
    uvicorn.run("walrus.app:create_app", factory=True, **server_options(config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
