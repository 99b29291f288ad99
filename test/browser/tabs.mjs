// Headless Chromium for test/jsclient's browser_test.go: pages of one
// browser context (tabs of one user) run the JavaScript client; the Go test
// drives them through this program, one JSON object a line each way.
//
// Commands on stdin, each answered on stdout with its id:
//
//   {"id":1,"cmd":"open","url":"http://127.0.0.1:8123/"} → {"id":1,"ok":true,"result":0} (the page's number)
//   {"id":2,"cmd":"read","page":0}  → {"id":2,"ok":true,"result":{"leader":true,"state":"open",...}}
//   {"id":3,"cmd":"close","page":0} → the page closes, as a closed tab does
//
// A failed command answers {"id":…,"ok":false,"error":"…"}. Lines without an
// id report the pages' errors: {"event":"pageerror","text":…}.
//
// Usage: node tabs.mjs <path of a Chromium binary>
//
// The program runs until its standard input closes, then closes Chromium
// and exits 0.
import {createInterface} from 'node:readline'
import {chromium} from 'playwright-core'

const executablePath = process.argv[2]
if (!executablePath) {
  process.stderr.write('usage: node tabs.mjs <path of a Chromium binary>\n')
  process.exit(2)
}

const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n')

// --no-sandbox: the tests run as root, where Chromium's sandbox cannot start.
const browser = await chromium.launch({executablePath, headless: true, args: ['--no-sandbox']})
const context = await browser.newContext()
const pages = []

const commands = {
  async open({url}) {
    const page = await context.newPage()
    page.on('pageerror', (err) => emit({event: 'pageerror', text: String(err)}))
    page.on('console', (msg) => emit({event: 'console', text: `${msg.type()}: ${msg.text()}`}))
    await page.goto(url)
    pages.push(page)
    return pages.length - 1
  },
  // read is what the page's client reported (window.heraldTest, set up by
  // the page the Go test serves).
  read: ({page}) =>
    pages[page].evaluate(() => ({
      leader: window.heraldTest.client.leader,
      state: window.heraldTest.client.state,
      states: window.heraldTest.states,
      received: window.heraldTest.received,
    })),
  async close({page}) {
    await pages[page].close()
  },
}

let queue = Promise.resolve()
const run = async (line) => {
  let request
  try {
    request = JSON.parse(line)
    const command = commands[request.cmd]
    if (!command) throw new Error(`unknown command ${JSON.stringify(request.cmd)}`)
    emit({id: request.id, ok: true, result: (await command(request)) ?? null})
  } catch (err) {
    emit({id: request?.id ?? null, ok: false, error: String(err?.message ?? err)})
  }
}

const input = createInterface({input: process.stdin})
input.on('line', (line) => {
  queue = queue.then(() => run(line))
})
input.on('close', () => {
  queue.then(() => browser.close()).finally(() => process.exit(0))
})
emit({event: 'ready'})
