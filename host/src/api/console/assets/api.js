// The `/v1` JSON API with the signed-in token as a bearer token. The token lives in this
// tab's sessionStorage only: never in a URL, a cookie or localStorage.

const TOKEN = 'switchyard.token';
const TENANT = 'switchyard.tenant';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get tenant() { return sessionStorage.getItem(TENANT); },
  set tenant(name) { sessionStorage.setItem(TENANT, name); },
  signIn(token) { sessionStorage.setItem(TOKEN, token); },
  signOut() { sessionStorage.removeItem(TOKEN); sessionStorage.removeItem(TENANT); },
  /** Tenant keys start with syk_; anything else that the API accepts is the admin token. */
  get role() { return this.token?.startsWith('syk_') ? 'tenant' : 'operator'; },
};

export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    const details = Array.isArray(e.details)
      ? e.details.map((d) => (typeof d === 'string' ? d : `${d.path ?? ''} ${d.message ?? JSON.stringify(d)}`))
      : [];
    super([`${status}: ${e.message ?? (typeof body === 'string' ? body : JSON.stringify(body))}`, ...details].join('\n'));
    this.status = status;
    this.body = body;
  }
}

/** Calls the API; resolves to the parsed JSON body (null when empty), rejects with ApiError. */
export async function api(method, path, body, token = session.token) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
  });
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  if (!resp.ok) throw new ApiError(resp.status, json);
  return json;
}

/** `/v1/tenants/{tenant}` + rest, with the name escaped. */
export function tenantPath(tenant, rest = '') {
  return `/v1/tenants/${encodeURIComponent(tenant)}${rest}`;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
