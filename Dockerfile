# syntax=docker/dockerfile:1
# One image for the operator and the streamers: `herald operator`, `herald streamer`.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module layer.
COPY go.mod go.sum ./
RUN go mod download
COPY *.go ./
COPY api/ api/
COPY config/ config/
COPY controllers/ controllers/
COPY internal/ internal/
COPY streamer/ streamer/
ARG VERSION=dev
ARG COMMIT=
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/herald-notify/herald/internal/version.Version=${VERSION} -X github.com/herald-notify/herald/internal/version.Commit=${COMMIT}" \
      -o /out/herald .

# Static binary on distroless: no shell, no package manager, non-root (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /herald
USER 65532:65532
ENTRYPOINT ["/herald"]
