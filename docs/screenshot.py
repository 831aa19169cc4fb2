"""`make screenshot`: docs/consola.png and docs/consola-movil.png, the console on demo data.

Starts its own PostgreSQL, Redis and gunicorn (electro_isla_testing/consola.py), logs
in as admin in headless Chromium, waits for every figure and chart, and saves a
full-page capture at 1280 px and at 390 px wide.
"""

from __future__ import annotations

import base64
from pathlib import Path

from electro_isla_testing.consola import (
    ADMIN,
    chromium,
    demo_console,
    figures,
    log_in,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent


def capture(base_url: str, width: int, path: Path, mobile: bool, height: int | None = None) -> None:
    """A full-page capture (or its top `height` pixels)."""
    with chromium(width, 900) as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile},
        )
        log_in(driver, base_url, *ADMIN)
        ready = wait_until(
            lambda: (
                "cache.hit_ratio" in figures(driver)
                and driver.execute_script(
                    "return [...document.querySelectorAll('.grafico img')]"
                    ".every(i => i.complete && i.naturalWidth > 0);"
                )
            ),
            30,
        )
        if not ready:
            raise SystemExit("the console did not show its figures within 30 s")
        wait_until(lambda: False, 6.0)  # the cache panel's next round (every 5 s)
        params = {"format": "png", "captureBeyondViewport": True}
        if height:
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", params)
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    with demo_console(pedidos=3000) as server:
        capture(server.url, 1280, ROOT / "docs" / "consola.png", mobile=False)
        capture(server.url, 390, ROOT / "docs" / "consola-movil.png", mobile=True, height=1400)


if __name__ == "__main__":
    main()
