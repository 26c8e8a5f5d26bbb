/**
 * The one scrubber for everything the project writes or sends: log lines (`logger.ts`), error
 * descriptions (`errors.ts`), configuration errors and dead-letter attributes (`dead-letter.ts`).
 *
 * Secrets are registered where they enter the process (the token provider, the IAM exchange, the
 * worker's token). Text from elsewhere (an SCM or IAM error message, a gateway page) may echo a
 * secret in a derived form, so a registered secret is redacted:
 *   - in any letter case (a gateway that lowercases what it echoes),
 *   - URL-encoded (`encodeURIComponent`, `encodeURI`, form encoding), JSON-escaped or HTML-escaped,
 *   - as any fragment of at least {@link MIN_FRAGMENT} characters of any of those forms (an echo cut
 *     to 40 characters, or a secret split across two quoted pieces).
 * Any URL's userinfo (`https://user:password@host`) is redacted whatever it holds.
 *
 * Secrets are kept as 12-character windows in one set, so scrubbing costs one set lookup per
 * character of the text. Only the first {@link MAX_INDEXED_CHARS} characters of each form are
 * windowed; a longer secret (an IAM token is a few KB) is also matched whole.
 */

export const REDACTED = "[redacted]";
/** The shortest echoed fragment that is redacted (and the window size of the index). */
export const MIN_FRAGMENT = 12;
/** Shorter values are not secrets worth redacting everywhere (they would garble ordinary words). */
const MIN_SECRET_LENGTH = 6;
/** Tokens rotate: keep the most recent few (an old one may still be echoed by a request in flight). */
const MAX_REMEMBERED = 8;
const MAX_INDEXED_CHARS = 64 * 1024;
/**
 * `scheme://userinfo@`: everything up to the last `@` of the URL is taken as userinfo when it has a `:`
 * (`user:password`, even with a `/`, `?` or `#` pasted raw into the password) or no path at all
 * (`user@host`); `https://host/a@b` keeps its path. Node's URL parser also reads `https:user@host`
 * and `https:\\user@host` as `https://user@host`, so http(s) needs no slashes.
 */
const URL_USERINFO = /\b(https?:[/\\]*|[a-z][a-z0-9+.-]*:[/\\]{2})((?:[^\s"'<>@]*@)+)/gi;

const remembered: string[] = [];
let windows = new Set<string>();
/** Folded forms matched whole: those shorter than a window, and those longer than the index. */
let wholeForms: string[] = [];

/** Adds secrets to the registry (idempotent; empty and very short values are ignored). */
export function registerSecret(...secrets: (string | undefined)[]): void {
  for (const secret of secrets) {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH || remembered.includes(secret)) continue;
    remembered.push(secret);
    if (remembered.length > MAX_REMEMBERED) {
      remembered.shift();
      rebuild();
    } else {
      index(secret);
    }
  }
}

/** Forgets every registered secret (tests). */
export function forgetSecrets(): void {
  remembered.length = 0;
  rebuild();
}

/**
 * `text` with every registered secret (and `extra`, which is registered first) and every URL
 * userinfo replaced by {@link REDACTED}.
 */
export function redact(text: string, ...extra: (string | undefined)[]): string {
  if (extra.length > 0) registerSecret(...extra);
  const clean = text.includes(":") ? text.replace(URL_USERINFO, hideUserinfo) : text;
  if (remembered.length === 0 || clean.length < MIN_SECRET_LENGTH) return clean;
  const folded = fold(clean);
  const spans: [number, number][] = [];
  for (const form of wholeForms) {
    for (let at = folded.indexOf(form); at !== -1; at = folded.indexOf(form, at + 1)) {
      spans.push([at, at + form.length]);
    }
  }
  for (let at = 0; at + MIN_FRAGMENT <= folded.length; at += 1) {
    if (windows.has(folded.slice(at, at + MIN_FRAGMENT))) spans.push([at, at + MIN_FRAGMENT]);
  }
  return spans.length === 0 ? clean : replaceSpans(clean, spans);
}

function hideUserinfo(match: string, scheme: string, userinfo: string): string {
  return userinfo.includes(":") || !/[/\\?#]/.test(userinfo) ? `${scheme}${REDACTED}@` : match;
}

/** `redact` for optional text. */
export function redactOptional(text: string | undefined, ...extra: (string | undefined)[]): string | undefined {
  return text === undefined ? undefined : redact(text, ...extra);
}

/** The forms a secret can be echoed in, folded to lower case. */
export function secretForms(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const forms = [
    secret,
    json,
    json.replaceAll("/", "\\/"),
    json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
    new URLSearchParams({ s: secret }).toString().slice(2),
    ...htmlForms(secret),
  ];
  for (const encode of [encodeURIComponent, encodeURI]) {
    try {
      forms.push(encode(secret));
    } catch {
      // A lone surrogate cannot be URL-encoded, so it cannot be echoed that way either.
    }
  }
  return [...new Set(forms.map(fold))];
}

const HTML_NAMED: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** HTML-escaped (an error page quoting the request): named, decimal and hex entities for & < > " '. */
function htmlForms(secret: string): string[] {
  const escapeEach = (entity: (c: string) => string) => secret.replace(/[&<>"']/g, entity);
  return [
    escapeEach((c) => HTML_NAMED[c]!),
    escapeEach((c) => `&#${c.charCodeAt(0)};`),
    escapeEach((c) => `&#x${c.charCodeAt(0).toString(16)};`),
  ];
}

function index(secret: string): void {
  for (const form of secretForms(secret)) {
    if (form.length < MIN_FRAGMENT || form.length > MAX_INDEXED_CHARS) wholeForms.push(form);
    const end = Math.min(form.length, MAX_INDEXED_CHARS);
    for (let at = 0; at + MIN_FRAGMENT <= end; at += 1) windows.add(form.slice(at, at + MIN_FRAGMENT));
  }
}

function rebuild(): void {
  windows = new Set();
  wholeForms = [];
  for (const secret of remembered) index(secret);
}

/** Lower case, one UTF-16 unit for one (so positions in the folded text are positions in the original). */
function fold(text: string): string {
  const lower = text.toLowerCase();
  if (lower.length === text.length) return lower;
  return Array.from(text, (c) => (c.toLowerCase().length === c.length ? c.toLowerCase() : c)).join("");
}

function replaceSpans(text: string, spans: [number, number][]): string {
  spans.sort((a, b) => a[0] - b[0]);
  let out = "";
  let from = 0;
  let [start, end] = spans[0]!;
  for (const [nextStart, nextEnd] of spans) {
    if (nextStart <= end) {
      end = Math.max(end, nextEnd);
      continue;
    }
    out += text.slice(from, start) + REDACTED;
    from = end;
    [start, end] = [nextStart, nextEnd];
  }
  return out + text.slice(from, start) + REDACTED + text.slice(end);
}
