// Herald's JavaScript client (clients/js/herald.js) under Node, for
// jsclient_test.go: the Go test starts this program against a streamer and
// reads what the client did, one JSON object a line on stdout:
//
//   {"kind":"state","state":"open","reason":"connected","retryInMs":null,"t":…}
//   {"kind":"notification","id":"…","data":{…},"t":…}    (and system, custom)
//   {"kind":"event","type":"end","id":"","data":{…},"t":…} (connection, token_expiring, end)
//   {"kind":"request","method":"POST","url":"…","t":…}
//   {"kind":"token","t":…}
//
// A system line also has "announcements": the names of those in force.
// t is Date.now() when it happened. "request" is every HTTP request the
// client made (tickets, refreshes, streams); "token" every getToken call.
//
// Usage: node client.mjs <streamer URL> <token URL> [options JSON]
//
// getToken GETs the token URL, where the Go test mints the user's current
// token. The options JSON is merged into connect's options (backoff).
// The program runs until its standard input closes, then closes the client
// and exits 0.
import {EventSource} from 'eventsource'
import {connect} from '../../clients/js/herald.js'

const [url, tokenURL, extra] = process.argv.slice(2)
if (!url || !tokenURL) {
  process.stderr.write('usage: node client.mjs <streamer URL> <token URL> [options JSON]\n')
  process.exit(2)
}

// Lines to a pipe are written synchronously on Linux, so none is lost on exit.
const emit = (line) => process.stdout.write(JSON.stringify({...line, t: Date.now()}) + '\n')

const loggedFetch = (input, init = {}) => {
  emit({kind: 'request', method: init.method ?? 'GET', url: String(input)})
  return fetch(input, init)
}

// The eventsource package's EventSource, its requests logged.
class LoggedEventSource extends EventSource {
  constructor(streamURL, init) {
    super(streamURL, {...init, fetch: loggedFetch})
  }
}

const client = connect({
  url,
  getToken: async () => {
    emit({kind: 'token'})
    const resp = await fetch(tokenURL)
    if (!resp.ok) throw new Error(`token URL answered ${resp.status}`)
    return resp.text()
  },
  EventSource: LoggedEventSource,
  fetch: loggedFetch,
  onState: (s) => emit({kind: 'state', state: s.state, reason: s.reason, retryInMs: s.retryInMs ?? null}),
  onNotification: (data, info) => emit({kind: 'notification', id: info.id, data}),
  onSystem: (data, info) => emit({kind: 'system', id: info.id, data, announcements: [...info.announcements.keys()]}),
  onCustom: (data, info) => emit({kind: 'custom', id: info.id, data}),
  onEvent: (data, info) => {
    if (!['notification', 'system', 'custom'].includes(data.type)) emit({kind: 'event', type: data.type, id: info.id, data})
  },
  ...(extra ? JSON.parse(extra) : {}),
})

const stop = () => {
  client.close()
  // close() aborts the stream's request, after which nothing keeps Node
  // running; the timer (unref'd) makes sure of it.
  setTimeout(() => process.exit(0), 2000).unref()
}
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()
