// Command go-echo is an echo bot's webhook behind botgate, with nothing but Go's standard library.
//
//	BOTGATE_UPSTREAM_SECRET=... PORT=8081 go run .
//
// botgate receives Telegram's updates, checks them, and forwards the good ones here. This server
// makes sure a request really came through botgate, then answers with a webhook reply: a Bot API
// call in the HTTP response, which Telegram executes, so the bot needs no token for it.
//
// Two checks, each optional, at least one required (see README.md next to this file): the
// upstream secret header (X-Telegram-Bot-Api-Secret-Token equals botgate's
// upstream.secret_token, compared in constant time), and a signed forward (botgate's
// upstream.sign with alg HS256: the JWT in Authorization is checked for its signature, iss, aud,
// exp, iat and a jti used once, and its body_sha256 claim against the exact bytes received;
// docs/upstream-verification.md explains each step).
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// setting returns NAME from the environment, or the content of the file NAME_FILE names (Docker
// and Kubernetes secrets) without its trailing newline.
func setting(name, fallback string) string {
	if file := os.Getenv(name + "_FILE"); file != "" {
		content, err := os.ReadFile(file)
		if err != nil {
			log.Fatalf("%s_FILE: %v", name, err)
		}
		return string(bytes.TrimSuffix(content, []byte("\n")))
	}
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

const (
	leeway  = 5 * time.Second // clock difference tolerated between botgate and this host
	maxBody = 1 << 20         // updates are a few KiB; botgate's own limit is lower still
)

var (
	// botgate's upstream.secret_token. During a rotation, "new,old": either is accepted (a
	// secret token has no commas: Telegram's charset is A-Z a-z 0-9 _ -).
	upstreamSecrets = splitSecrets(setting("BOTGATE_UPSTREAM_SECRET", ""))
	hs256Key        = []byte(setting("BOTGATE_HS256_KEY", "")) // botgate's upstream.sign key (HS256)
	audience        = setting("BOTGATE_AUDIENCE", "")          // the bot's name in botgate's config
	issuer          = setting("BOTGATE_ISSUER", "botgate")
)

// Update holds the parts of a Telegram update this bot uses.
type Update struct {
	UpdateID int64 `json:"update_id"`
	Message  *struct {
		Chat struct {
			ID int64 `json:"id"`
		} `json:"chat"`
		Text *string `json:"text"`
	} `json:"message"`
	CallbackQuery *struct {
		ID string `json:"id"`
	} `json:"callback_query"`
}

// Claims are the claims of botgate's signed forward.
type Claims struct {
	Iss        string          `json:"iss"`
	Aud        json.RawMessage `json:"aud"` // a string, or a list of strings
	Iat        *float64        `json:"iat"`
	Exp        *float64        `json:"exp"`
	Jti        string          `json:"jti"`
	UpdateID   *int64          `json:"update_id"`
	BodySHA256 string          `json:"body_sha256"`
}

func splitSecrets(list string) [][]byte {
	var secrets [][]byte
	for _, secret := range strings.Split(list, ",") {
		if secret != "" {
			secrets = append(secrets, []byte(secret))
		}
	}
	return secrets
}

func checkSecret(r *http.Request) error {
	values := r.Header.Values("X-Telegram-Bot-Api-Secret-Token")
	if len(values) == 1 {
		for _, secret := range upstreamSecrets {
			// ConstantTimeCompare takes as long for a near miss as for a wild guess: no timing
			// side channel.
			if subtle.ConstantTimeCompare([]byte(values[0]), secret) == 1 {
				return nil
			}
		}
	}
	return errors.New("bad secret token")
}

var (
	seenMu  sync.Mutex
	seenJti = map[string]time.Time{} // a token is good for one request
)

func firstUse(jti string, exp time.Time) bool {
	seenMu.Lock()
	defer seenMu.Unlock()
	now := time.Now()
	for id, until := range seenJti {
		if until.Add(leeway).Before(now) {
			delete(seenJti, id)
		}
	}
	if _, seen := seenJti[jti]; seen {
		return false
	}
	seenJti[jti] = exp
	return true
}

func unix(seconds float64) time.Time { return time.Unix(0, int64(seconds*1e9)) }

// checkToken verifies botgate's HS256 JWT for this body and returns its claims.
func checkToken(r *http.Request, body []byte) (*Claims, error) {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") {
		return nil, errors.New("no token")
	}
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed token")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	headerJSON, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	signature, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || json.Unmarshal(headerJSON, &header) != nil {
		return nil, errors.New("malformed token")
	}
	// The algorithm is pinned here, never taken from the token ("alg": "none" and friends).
	if header.Alg != "HS256" {
		return nil, errors.New("unexpected alg")
	}
	mac := hmac.New(sha256.New, hs256Key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(signature, mac.Sum(nil)) {
		return nil, errors.New("bad signature")
	}
	claimsJSON, err := base64.RawURLEncoding.DecodeString(parts[1])
	claims := &Claims{}
	if err != nil || json.Unmarshal(claimsJSON, claims) != nil {
		return nil, errors.New("malformed claims")
	}
	if claims.Iss != issuer {
		return nil, errors.New("wrong issuer")
	}
	var one string
	var many []string
	if !(json.Unmarshal(claims.Aud, &one) == nil && one == audience) &&
		!(json.Unmarshal(claims.Aud, &many) == nil && contains(many, audience)) {
		return nil, errors.New("wrong audience") // a token botgate made for another bot
	}
	now := time.Now()
	if claims.Exp == nil || unix(*claims.Exp).Add(leeway).Before(now) {
		return nil, errors.New("expired")
	}
	if claims.Iat == nil || unix(*claims.Iat).Add(-leeway).After(now) {
		return nil, errors.New("issued in the future")
	}
	if claims.UpdateID == nil || claims.Jti == "" {
		return nil, errors.New("update_id and jti are required")
	}
	// The signature covers the claims and body_sha256 covers the body: hash the exact bytes
	// received, before any JSON parsing (base64url of SHA-256, no padding).
	sum := sha256.Sum256(body)
	digest := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(claims.BodySHA256), []byte(digest)) != 1 {
		return nil, errors.New("body_sha256 does not match the body")
	}
	if !firstUse(claims.Jti, unix(*claims.Exp)) {
		return nil, errors.New("token already used")
	}
	return claims, nil
}

func contains(list []string, value string) bool {
	for _, item := range list {
		if item == value {
			return true
		}
	}
	return false
}

// answer is the bot itself: a webhook reply for the update, or nil for no reply.
func answer(update *Update) map[string]any {
	if m := update.Message; m != nil && m.Text != nil {
		text := *m.Text
		if command := strings.SplitN(strings.SplitN(text, " ", 2)[0], "@", 2)[0]; command == "/start" {
			text = "Hello! Send me anything and I will send it back."
		}
		return map[string]any{"method": "sendMessage", "chat_id": m.Chat.ID, "text": text}
	}
	if q := update.CallbackQuery; q != nil {
		return map[string]any{"method": "answerCallbackQuery", "callback_query_id": q.ID, "text": "Got it"}
	}
	return nil
}

func webhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, `{"ok":false}`, http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, `{"ok":false}`, http.StatusRequestEntityTooLarge)
		return
	}
	update := &Update{}
	err = func() error {
		if len(upstreamSecrets) > 0 {
			if err := checkSecret(r); err != nil {
				return err
			}
		}
		var claims *Claims
		if len(hs256Key) > 0 {
			var err error
			if claims, err = checkToken(r, body); err != nil {
				return err
			}
		}
		if err := json.Unmarshal(body, update); err != nil {
			return err
		}
		if claims != nil && *claims.UpdateID != update.UpdateID {
			return errors.New("update_id does not match the body")
		}
		return nil
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "refused: %v\n", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"ok":false}`)
		return
	}
	fmt.Printf("update %d accepted\n", update.UpdateID)
	w.Header().Set("Content-Type", "application/json")
	if reply := answer(update); reply != nil {
		json.NewEncoder(w).Encode(reply)
	}
}

func main() {
	if len(upstreamSecrets) == 0 && len(hs256Key) == 0 {
		log.Fatal("set BOTGATE_UPSTREAM_SECRET and/or BOTGATE_HS256_KEY: without either, anyone could post updates")
	}
	if len(hs256Key) > 0 && audience == "" {
		log.Fatal("set BOTGATE_AUDIENCE to the bot's name in botgate's config (the aud of its tokens)")
	}
	// Behind botgate in the same pod or host: loopback only.
	address := net.JoinHostPort(setting("HOST", "127.0.0.1"), setting("PORT", "8081"))
	mux := http.NewServeMux()
	mux.HandleFunc(setting("WEBHOOK_PATH", "/webhook"), webhook)
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", listener.Addr())

	// SIGTERM (docker stop, Kubernetes): finish the requests in flight, then exit.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	drained := make(chan struct{})
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		server.Shutdown(ctx)
		close(drained)
	}()
	if err := server.Serve(listener); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	<-drained
}
