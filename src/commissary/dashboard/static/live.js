// Live orders from the order event stream (Server-Sent Events). EventSource cannot send a
// header, so each connection opens with a fresh single-use ticket, and after a drop it
// resumes from the last event id it received: nothing is missed or shown twice.
import { call } from "./api.js";

const RETRY_MS = 2000;

export function follow({ onEvent, onState }) {
  let lastId = null;
  let source = null;
  let stopped = false;
  let timer = null;

  async function connect() {
    if (stopped) return;
    onState("connecting…");
    let ticket;
    try {
      ticket = (await call("POST", "/api/v1/ws-tickets")).ticket;
    } catch (error) {
      onState("offline");
      timer = setTimeout(connect, RETRY_MS);
      return;
    }
    const query = new URLSearchParams({ ticket });
    if (lastId !== null) query.set("last_event_id", lastId);
    source = new EventSource(`/api/v1/events/stream?${query}`);
    source.addEventListener("open", () => onState("live"));
    source.addEventListener("order_event", (message) => {
      lastId = message.lastEventId;
      onEvent(JSON.parse(message.data));
    });
    source.addEventListener("error", () => {
      // The browser would retry with the same, spent ticket: reconnect with a new one.
      source.close();
      onState("reconnecting…");
      if (!stopped) timer = setTimeout(connect, RETRY_MS);
    });
  }

  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
  };
}
