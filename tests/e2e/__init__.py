"""End-to-end journeys in a real headless browser (Chromium through Playwright)."""
