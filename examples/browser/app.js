// Herald's reference browser page: a user's notifications through Herald's
// JavaScript client (clients/js), with no build step.
//
// The client holds the stream: it trades the user's token for a
// short-lived, single-use ticket before each stream (no token in the URL),
// resumes from the last event id after a break (Herald replays what was
// missed and says whether it could: "recovered"), refreshes the token in
// place, reacts to each end event, backs off with jitter and shares one
// stream among the user's tabs. The page shows what it reports.
//
// The element ids and data-* attributes are stable: hack/localplatform's
// browser test reads them.
import { connect } from '/clients/js/herald.js'

// setTimeout fires at once for longer delays (more than 24.8 days).
const MAX_TIMEOUT_MS = 2 ** 31 - 1

const $ = (id) => document.getElementById(id)

let lastEventId = '' // the id a new stream resumes from, as the client has it
let streams = 0 // streams established
let connectedAs = '' // who and since when, of the stream open now
let expiryTimer = null // takes down the next announcement to expire

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

// Herald's origin differs from the page's, so the page's origin must be in
// the channel's cors.allowedOrigins.
connect({
  url: config.heraldUrl,
  getToken,
  userId: config.user,
  onState: showConnection,
  onNotification: addNotification,
  onCustom: addNotification,
  // System events published through the API carry no name: they go to the
  // list. Those of SystemEvents are announcements: banners.
  onSystem: (ev, info) => (ev.name ? showBanners(info.announcements) : addNotification(ev, info)),
  onEvent: track,
})

// getToken stands in for your application's login, which already holds the
// user's token. Under `make run` a development-only endpoint of the page
// server signs a short-lived one for the sample user with the sample
// channel's key; a real application never serves such an endpoint.
async function getToken() {
  const { token } = await fetch('dev/token', { method: 'POST' }).then(jsonOrThrow)
  return token
}

// track follows every event: the last id, and the connection event that
// begins each stream.
function track(ev, { id }) {
  if (id) {
    lastEventId = id
    $('last-event-id').textContent = id
  }
  if (ev.type === 'connection') connected(ev)
}

// connected handles the first event of every stream. Only a resume carries
// "recovered": false means events were lost (the log restarted, or the
// client was away longer than the channel's history), so an application
// reloads its state from its own API then.
function connected(ev) {
  streams++
  $('streams').dataset.count = streams
  $('streams').textContent = streams
  connectedAs = `as ${ev.userId} since ${ev.timestamp}`
  if ('recovered' in ev) {
    $('recovered').dataset.recovered = ev.recovered
    $('recovered').textContent = ev.recovered ? 'recovered: missed events replayed' : 'not recovered: events may be missing'
  }
}

// showConnection shows the client's state ("open" reads "connected") and
// why it changed.
function showConnection({ state, reason, retryInMs, message, error }) {
  if (state === 'open') return showState('connected', connectedAs)
  const why = [reason, message ?? error?.message].filter(Boolean).join(': ')
  const next = retryInMs === undefined ? '' : ` in ${(retryInMs / 1000).toFixed(1)} s`
  if (state === 'reconnecting') {
    return showState(state, `${why}; ${lastEventId ? `resuming after ${lastEventId}` : 'a new stream'}${next}`)
  }
  showState(state, why)
}

function addNotification(ev, { id }) {
  const item = document.createElement('li')
  item.dataset.type = ev.type
  item.dataset.eventId = id
  if (ev.notificationId) item.dataset.notificationId = ev.notificationId
  item.append(
    element('strong', ev.notificationType ?? ev.eventType),
    element('span', messageOf(ev.data)),
    element('small', [ev.priority, ev.timestamp, `id ${id}`].filter(Boolean).join(' · ')),
  )
  $('notifications').prepend(item)
  $('empty').hidden = true
}

// showBanners shows the announcements in force, one banner per SystemEvent
// name: the client keeps the latest revision of each (an UPDATE replaces
// it) and drops it on DELETE. Until expiresAt, Herald repeats an
// announcement to users who connect later; after it, the banner goes.
function showBanners(announcements) {
  const now = Date.now()
  const untilExpiry = (ev) => Date.parse(ev.expiresAt) - now
  const inForce = [...announcements.values()].filter((ev) => !(untilExpiry(ev) <= 0))
  $('banners').replaceChildren(...inForce.map(banner))
  clearTimeout(expiryTimer)
  const next = Math.min(...inForce.map(untilExpiry).filter((ms) => ms > 0))
  if (next < MAX_TIMEOUT_MS) expiryTimer = setTimeout(() => showBanners(announcements), next)
}

function banner(ev) {
  const el = document.createElement('div')
  el.className = `banner priority-${(ev.priority ?? 'normal').toLowerCase()}`
  el.setAttribute('role', 'status')
  el.dataset.name = ev.name
  el.dataset.revision = ev.revision ?? ''
  el.dataset.action = ev.action ?? ''
  el.append(
    element('strong', ev.eventType),
    element('span', messageOf(ev.data)),
    element('small', [ev.revision && `revision ${ev.revision}`, ev.timestamp].filter(Boolean).join(' · ')),
  )
  return el
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
