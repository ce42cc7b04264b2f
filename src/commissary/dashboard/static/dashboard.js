// The dashboard: sales figures as charts, the technical status and the live orders. Every
// text from the API is put into the page with textContent, never parsed as HTML.
import { ApiError, SignedOut, call, read, signIn, signOut, signedIn } from "./api.js";
import { follow } from "./live.js";

const READERS = ["sales", "admin"];
const LIVE_ROWS = 50;
const STATUS_EVERY_MS = 15000;

const $ = (id) => document.getElementById(id);
const charts = {};
const restaurantNames = new Map();
let stopLive = null;
let statusTimer = null;
let refreshTimer = null;

function cell(value, className) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "–" : String(value);
  if (className) td.className = className;
  return td;
}

function fill(tbody, rows) {
  tbody.replaceChildren(
    ...rows.map((values) => {
      const tr = document.createElement("tr");
      tr.append(...values.map((value, i) => cell(value, i > 0 ? "number" : "")));
      return tr;
    }),
  );
}

function showSignIn(message = "") {
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("sign-in-panel").hidden = false;
  $("sign-in-error").textContent = message;
}

function stop() {
  if (stopLive) stopLive();
  stopLive = null;
  clearInterval(statusTimer);
  clearTimeout(refreshTimer);
}

function failed(error, where) {
  if (error instanceof SignedOut) {
    stop();
    showSignIn("Your session ended: sign in again.");
    return;
  }
  where.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error}`;
}

// --- charts -------------------------------------------------------------------------------

function chart(id, type, options) {
  if (!window.Chart) {
    $("chart-missing").hidden = false;
    return null;
  }
  if (!charts[id]) {
    charts[id] = new window.Chart($(id), {
      type,
      data: { labels: [], datasets: [{ label: "", data: [] }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } }, ...options },
    });
  }
  return charts[id];
}

function draw(id, type, labels, values, label, options = {}) {
  const instance = chart(id, type, options);
  if (!instance) return;
  instance.data.labels = labels;
  instance.data.datasets[0].data = values;
  instance.data.datasets[0].label = label;
  instance.update();
}

// --- figures ------------------------------------------------------------------------------

async function loadRestaurants() {
  if (restaurantNames.size) return;
  const page = await read("/api/v1/restaurants?limit=100&sort=name");
  const select = $("restaurant");
  for (const place of (page && page.items) || []) {
    restaurantNames.set(place.id, place.name);
    const option = document.createElement("option");
    option.value = String(place.id);
    option.textContent = place.name;
    select.append(option);
  }
}

async function loadOverview() {
  $("board-error").textContent = "";
  let overview;
  try {
    overview = await call("GET", "/api/v1/stats/overview", {
      from: $("from").value,
      to: $("to").value,
      restaurant_id: $("restaurant").value,
    });
  } catch (error) {
    failed(error, $("board-error"));
    return;
  }
  $("from").value = overview.start_date;
  $("to").value = overview.end_date;
  const currency = overview.currency || "";
  $("total-orders").textContent = String(overview.orders);
  $("total-revenue").textContent = `${overview.revenue} ${currency}`.trim();
  $("timezone").textContent = overview.timezone;
  draw(
    "revenue-chart",
    "bar",
    overview.days.map((day) => day.date),
    overview.days.map((day) => Number(day.revenue)),
    `Revenue ${currency}`.trim(),
  );
  draw(
    "products-chart",
    "bar",
    overview.top_products.map((product) => product.product_name),
    overview.top_products.map((product) => product.total_quantity),
    "Units sold",
    { indexAxis: "y" },
  );
  fill(
    $("statuses"),
    Object.entries(overview.orders_by_status).map(([status, count]) => [status.replaceAll("_", " "), count]),
  );
  fill(
    $("restaurants"),
    overview.restaurants.map((r) => [r.name, r.orders, r.cancelled, `${r.revenue} ${r.currency}`]),
  );
}

async function loadStatus(me) {
  const ready = await read("/ready");
  const checks = (ready && ready.checks) || {};
  fill($("health"), [["overall", (ready && ready.status) || "unreachable"], ...Object.entries(checks)]);
  if (me.role !== "admin") {
    fill($("queues"), [["queues are shown to admins", "", "", "", "", ""]]);
    return;
  }
  try {
    const queues = await call("GET", "/api/v1/ops/queues");
    fill(
      $("queues"),
      queues.queues.map((q) => [`${q.name} (${q.backend})`, q.depth, q.running, q.scheduled, q.failed, q.workers]),
    );
    $("outbox").textContent = `Outbox: ${queues.outbox_backlog} owed, ${queues.outbox_given_up} given up.`;
  } catch (error) {
    failed(error, $("outbox"));
  }
}

// --- live orders --------------------------------------------------------------------------

function showEvent(event) {
  const tbody = $("live");
  let tr = tbody.querySelector(`tr[data-order-id="${Number(event.order_id)}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.orderId = String(Number(event.order_id));
    tr.append(cell(`#${event.order_id}`), cell(restaurantNames.get(event.restaurant_id) || `#${event.restaurant_id}`), cell(""), cell(""), cell(""));
    tbody.prepend(tr);
    while (tbody.children.length > LIVE_ROWS) tbody.lastElementChild.remove();
  }
  const [, , status, type, at] = tr.children;
  if (event.to_status) status.textContent = event.to_status.replaceAll("_", " ");
  type.textContent = event.type;
  at.textContent = new Date(event.created_at).toLocaleTimeString();
  tr.classList.add("fresh");
  // The figures follow the orders, a little behind a burst of events.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(loadOverview, 1500);
}

// --- sign-in and start --------------------------------------------------------------------

async function start() {
  if (!signedIn()) {
    showSignIn();
    return;
  }
  let me;
  try {
    me = await call("GET", "/api/v1/users/me");
  } catch (error) {
    showSignIn(error instanceof SignedOut ? "" : String(error.message));
    return;
  }
  if (!READERS.includes(me.role)) {
    signOut();
    showSignIn("This page is for sales and admin accounts.");
    return;
  }
  $("sign-in-panel").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${me.full_name} (${me.role})`;
  await loadRestaurants();
  await loadOverview();
  await loadStatus(me);
  statusTimer = setInterval(() => loadStatus(me), STATUS_EVERY_MS);
  stopLive = follow({ onEvent: showEvent, onState: (state) => ($("live-state").textContent = state) });
}

$("sign-in").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await signIn($("email").value, $("password").value);
  } catch (error) {
    $("sign-in-error").textContent = error.message;
    return;
  }
  $("password").value = "";
  await start();
});

$("sign-out").addEventListener("click", () => {
  stop();
  signOut();
  showSignIn();
});

$("range").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  loadOverview();
});

start();
