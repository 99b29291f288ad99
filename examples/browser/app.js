// Herald's reference browser client: a user's notifications through the
// browser's own EventSource, with no library and no build step.
//
// EventSource cannot send an Authorization header, and a token in the URL
// ends up in logs and history. So the page trades the user's token for a
// short-lived, single-use ticket and opens the stream with that:
//
//   token ── POST /api/v1/sse/tickets ──► {ticket} ──► new EventSource(…/notifications?ticket=…)
//
// A ticket is spent once its stream opens. When the stream breaks, the
// browser's own retry would present the spent ticket, get 401 and stop; so
// the page closes the EventSource itself, fetches a new ticket and reopens
// with &lastEventId=<the last id received>: Herald replays what was missed
// and says in the connection event whether it could ("recovered").
//
// The element ids and data-* attributes are stable: hack/localplatform's
// browser test reads them.

const STREAM_PATH = '/api/v1/sse/notifications'
const TICKETS_PATH = '/api/v1/sse/tickets'
// Reconnects back off from 0.5-1 s up to 15-30 s, at a random point of each
// range, so that clients cut off together do not all come back together.
const BACKOFF_FIRST_MS = 1000
const BACKOFF_MAX_MS = 30000
// setTimeout fires at once for longer delays (more than 24.8 days).
const MAX_TIMEOUT_MS = 2 ** 31 - 1

const $ = (id) => document.getElementById(id)

let source = null // the open EventSource, if any
let lastEventId = '' // the id to resume from
let failures = 0 // reconnects since the last established stream
let streams = 0 // streams established

// config.json comes from the server of the page: Herald's base URL (the
// channel's Service) and the user's id.
let config
try {
  config = await fetch('config.json').then(jsonOrThrow)
} catch (err) {
  showState('failed', `cannot read config.json: ${err.message}`)
  throw err
}
$('user').textContent = config.user
connect()

// getToken stands in for your application's login, which already holds the
// user's token. Under `make run` a development-only endpoint of the page
// server signs a short-lived one for the sample user with the sample
// channel's key; a real application never serves such an endpoint.
async function getToken() {
  const { token } = await fetch('dev/token', { method: 'POST' }).then(jsonOrThrow)
  return token
}

// getTicket trades a fresh token for a ticket. Herald's origin differs from
// the page's, so the page's origin must be in the channel's
// cors.allowedOrigins.
async function getTicket() {
  const token = await getToken()
  const { ticket } = await fetch(new URL(TICKETS_PATH, config.heraldUrl), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  }).then(jsonOrThrow)
  return ticket
}

async function connect() {
  showState('connecting', lastEventId ? `resuming after ${lastEventId}` : '')
  let ticket
  try {
    ticket = await getTicket()
  } catch (err) {
    return reconnect(`no ticket: ${err.message}`)
  }
  const url = new URL(STREAM_PATH, config.heraldUrl)
  url.searchParams.set('ticket', ticket)
  if (lastEventId) url.searchParams.set('lastEventId', lastEventId)
  source = new EventSource(url)
  source.onmessage = receive
  // Any end of the stream: the connection dropped, the server closed it (a
  // drain, an expired token, another tab of the user replacing it) or
  // refused it.
  source.onerror = () => reconnect('the stream ended')
}

function reconnect(why) {
  source?.close() // stops the browser's own retry with the spent ticket
  source = null
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** failures++)
  const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
  showState('reconnecting', `${why}; a new ticket in ${(delay / 1000).toFixed(1)} s`)
  setTimeout(connect, delay)
}

function receive(message) {
  // Frames without an id: (an announcement repeated for a late joiner) keep
  // the previous id, as the resume position must.
  if (message.lastEventId) {
    lastEventId = message.lastEventId
    $('last-event-id').textContent = lastEventId
  }
  const ev = JSON.parse(message.data)
  switch (ev.type) {
    case 'connection':
      return connected(ev)
    case 'notification':
    case 'custom':
      return addNotification(ev, message.lastEventId)
    case 'system':
      return showBanner(ev, message.lastEventId)
  }
}

// connected handles the first event of every stream. Only a resume carries
// "recovered": false means events were lost (the log restarted, or the
// client was away longer than the channel's history), so an application
// reloads its state from its own API then.
function connected(ev) {
  failures = 0
  streams++
  $('streams').dataset.count = streams
  $('streams').textContent = streams
  showState('connected', `as ${ev.userId} since ${ev.timestamp}`)
  if ('recovered' in ev) {
    $('recovered').dataset.recovered = ev.recovered
    $('recovered').textContent = ev.recovered ? 'recovered: missed events replayed' : 'not recovered: events may be missing'
  }
}

function addNotification(ev, eventId) {
  const item = document.createElement('li')
  item.dataset.type = ev.type
  item.dataset.eventId = eventId
  if (ev.notificationId) item.dataset.notificationId = ev.notificationId
  item.append(
    element('strong', ev.notificationType ?? ev.eventType),
    element('span', messageOf(ev.data)),
    element('small', [ev.priority, ev.timestamp, `id ${eventId}`].filter(Boolean).join(' · ')),
  )
  $('notifications').prepend(item)
  $('empty').hidden = true
}

// showBanner keeps one banner per SystemEvent name: CREATE shows it, UPDATE
// replaces it, DELETE takes it down. System events published through the
// API carry no name and get a banner each.
function showBanner(ev, eventId) {
  const name = ev.name ?? `event-${eventId}`
  const shown = document.querySelector(`#banners [data-name="${CSS.escape(name)}"]`)
  if (ev.action === 'DELETE') {
    shown?.remove()
    return
  }
  if (shown && Number(shown.dataset.revision) > ev.revision) return // a stale revision
  const banner = shown ?? document.createElement('div')
  banner.className = `banner priority-${(ev.priority ?? 'normal').toLowerCase()}`
  banner.setAttribute('role', 'status')
  banner.dataset.name = name
  banner.dataset.revision = ev.revision ?? ''
  banner.dataset.action = ev.action ?? ''
  banner.replaceChildren(
    element('strong', ev.eventType),
    element('span', messageOf(ev.data)),
    element('small', [ev.revision && `revision ${ev.revision}`, ev.timestamp].filter(Boolean).join(' · ')),
  )
  if (!shown) $('banners').append(banner)
  // Until expiresAt, Herald repeats the announcement to users who connect
  // later; after it, the banner goes.
  const untilExpiry = Date.parse(ev.expiresAt) - Date.now()
  if (untilExpiry < MAX_TIMEOUT_MS) {
    const revision = banner.dataset.revision
    setTimeout(() => banner.dataset.revision === revision && banner.remove(), untilExpiry)
  }
}

function showState(state, detail = '') {
  $('state').dataset.state = state
  $('state').textContent = state
  $('detail').textContent = detail
}

// messageOf is the text of an event's data: its message, else its JSON.
function messageOf(data) {
  return typeof data?.message === 'string' ? data.message : JSON.stringify(data ?? null)
}

// element builds a child from text only (textContent): event data is never
// parsed as HTML.
function element(tag, text) {
  const el = document.createElement(tag)
  el.textContent = text ?? ''
  return el
}

async function jsonOrThrow(response) {
  const body = await response.json().catch(() => null)
  if (!response.ok) {
    throw new Error(`${response.status} from ${response.url}: ${body?.error?.message ?? response.statusText}`)
  }
  return body
}
