// The API as the dashboard calls it: the member's tokens live in this tab's sessionStorage
// only (gone when the tab closes), sent as `Authorization: Bearer`.
const ACCESS = "commissary.access";
const REFRESH = "commissary.refresh";

export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
  }
}

export function signedIn() {
  return sessionStorage.getItem(ACCESS) !== null;
}

export function signOut() {
  sessionStorage.removeItem(ACCESS);
  sessionStorage.removeItem(REFRESH);
}

function keep(tokens) {
  sessionStorage.setItem(ACCESS, tokens.access_token);
  if (tokens.refresh_token) sessionStorage.setItem(REFRESH, tokens.refresh_token);
}

async function answer(response) {
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function signIn(email, password) {
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  keep(await answer(response));
}

async function refresh() {
  const token = sessionStorage.getItem(REFRESH);
  if (!token) return false;
  const response = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: token }),
  });
  if (!response.ok) return false;
  keep(await response.json());
  return true;
}

// `path` with `params` (null and empty values left out), as the signed-in member; an
// expired access token is renewed once with the refresh token.
export async function call(method, path, params = {}, retried = false) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const url = query.size ? `${path}?${query}` : path;
  const token = sessionStorage.getItem(ACCESS);
  if (!token) throw new SignedOut();
  const response = await fetch(url, { method, headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) {
    if (!retried && (await refresh())) return call(method, path, params, true);
    signOut();
    throw new SignedOut();
  }
  return answer(response);
}

// Public endpoints (readiness, the restaurants list).
export async function read(path) {
  const response = await fetch(path);
  return response.json().catch(() => null);
}
