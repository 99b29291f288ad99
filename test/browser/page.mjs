// Headless Chromium for hack/localplatform's browser test: the Go test
// starts this program and drives the browser through it, one JSON object a
// line each way.
//
// Commands on stdin, each answered on stdout with its id:
//
//   {"id":1,"cmd":"open","url":"http://127.0.0.1:8123/"}   → {"id":1,"ok":true}
//   {"id":2,"cmd":"read"}                → {"id":2,"ok":true,"result":{"state":"connected",...}}
//   {"id":3,"cmd":"screenshot","path":"/abs/file.png"}
//   {"id":4,"cmd":"streamRequests"}      → the URLs of the page's stream requests so far
//   {"id":5,"cmd":"holdTokens"}          → the page's requests for a token wait...
//   {"id":6,"cmd":"releaseTokens"}       → ...until this lets them through
//
// A failed command answers {"id":…,"ok":false,"error":"…"}. Lines without an
// id report what the page did: {"event":"ready"} once Chromium runs, then
// {"event":"console","text":…} and {"event":"pageerror","text":…}.
//
// Usage: node page.mjs <path of a Chromium binary>
//
// The program runs until its standard input closes (the Go test holds the
// other end), then closes Chromium and exits 0.
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'

const executablePath = process.argv[2]
if (!executablePath) {
  process.stderr.write('usage: node page.mjs <path of a Chromium binary>\n')
  process.exit(2)
}

// Lines to a pipe are written synchronously on Linux, so none is lost on exit.
const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n')

// --no-sandbox: the tests run as root, where Chromium's sandbox cannot start.
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] })
const page = await browser.newPage({ viewport: { width: 900, height: 700 } })
page.on('console', (msg) => emit({ event: 'console', text: `${msg.type()}: ${msg.text()}` }))
page.on('pageerror', (err) => emit({ event: 'pageerror', text: String(err) }))

// streamRequests are the URLs the page's EventSources requested, in order.
const streamRequests = []
page.on('request', (request) => {
  if (new URL(request.url()).pathname === '/api/v1/sse/notifications') streamRequests.push(request.url())
})

// heldTokens are the token requests that wait while tokens are held.
let heldTokens = null
const isTokenRequest = (url) => new URL(url).pathname.endsWith('/dev/token')

const commands = {
  async open({ url }) {
    await page.goto(url)
  },
  // read is what the page shows, through its stable ids and data attributes.
  read: () =>
    page.evaluate(() => {
      const text = (id) => document.getElementById(id).textContent
      return {
        state: document.getElementById('state').dataset.state,
        detail: text('detail'),
        user: text('user'),
        lastEventId: text('last-event-id'),
        streams: Number(document.getElementById('streams').dataset.count),
        recovered: document.getElementById('recovered').dataset.recovered,
        notifications: [...document.querySelectorAll('#notifications li')].map((li) => ({
          type: li.dataset.type,
          eventId: li.dataset.eventId,
          notificationId: li.dataset.notificationId ?? '',
          text: li.textContent,
        })),
        banners: [...document.querySelectorAll('#banners .banner')].map((b) => ({
          name: b.dataset.name,
          revision: b.dataset.revision,
          action: b.dataset.action,
          text: b.textContent,
        })),
      }
    }),
  streamRequests: () => streamRequests,
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true })
  },
  async holdTokens() {
    if (heldTokens) return
    heldTokens = []
    await page.route(isTokenRequest, (route) => (heldTokens ? heldTokens.push(route) : route.continue()))
  },
  async releaseTokens() {
    if (!heldTokens) return
    const held = heldTokens
    heldTokens = null
    // Continued before the route goes: unroute would settle them itself.
    await Promise.all(held.map((route) => route.continue()))
    await page.unroute(isTokenRequest)
  },
}

// One command at a time, in order.
let queue = Promise.resolve()
const run = async (line) => {
  let request
  try {
    request = JSON.parse(line)
    const command = commands[request.cmd]
    if (!command) throw new Error(`unknown command ${JSON.stringify(request.cmd)}`)
    const result = await command(request)
    emit({ id: request.id, ok: true, result: result ?? null })
  } catch (err) {
    emit({ id: request?.id ?? null, ok: false, error: String(err?.message ?? err) })
  }
}

const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  queue = queue.then(() => run(line))
})
input.on('close', () => {
  queue.then(() => browser.close()).finally(() => process.exit(0))
})
emit({ event: 'ready' })
