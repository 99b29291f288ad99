// A Herald stream read by a third-party SSE client, the eventsource package,
// for eventsource_test.go: the Go test starts this program and reads what the
// library made of the stream, one JSON object a line on stdout:
//
//   {"kind":"open"}
//   {"kind":"message","type":"message","data":"...","lastEventId":"..."}
//   {"kind":"error","message":"...","code":401}
//
// Usage: HERALD_TOKEN=<jwt> node client.mjs <stream URL>
//
// The token goes in an Authorization: Bearer header, through the library's
// fetch option. Everything else, Last-Event-ID on a reconnect included, is
// left to the library: that is what the test proves.
//
// The program runs until its standard input closes (the Go test holds the
// other end, so a test process that dies ends it too), then closes the stream
// and exits 0.
import {EventSource} from 'eventsource'

const url = process.argv[2]
const token = process.env.HERALD_TOKEN
if (!url || !token) {
  process.stderr.write('usage: HERALD_TOKEN=<jwt> node client.mjs <stream URL>\n')
  process.exit(2)
}

// Lines to a pipe are written synchronously on Linux, so none is lost on exit.
const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n')

const es = new EventSource(url, {
  fetch: (input, init) =>
    fetch(input, {...init, headers: {...init.headers, Authorization: `Bearer ${token}`}}),
})

es.onopen = () => emit({kind: 'open'})
// onmessage, as browser clients listen: it receives only events without an
// event: field, which is every event of Herald's contract.
es.onmessage = (ev) =>
  emit({kind: 'message', type: ev.type, data: ev.data, lastEventId: ev.lastEventId})
es.onerror = (ev) =>
  emit({kind: 'error', message: ev.message ?? '', code: ev.code ?? null, readyState: es.readyState})

const stop = () => {
  es.close()
  // close() aborts the request, after which nothing keeps Node running; the
  // timer (unref'd: it does not keep Node running either) makes sure of it.
  setTimeout(() => process.exit(0), 2000).unref()
}
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()
