"""The web dashboard for sales and admin members: plain HTML and JavaScript modules served
by the API, charts drawn by Chart.js from the npm registry (``package.json``)."""
