#!/bin/sh
# Writes fresh random secrets for a botgate deployment, one file per name, into DIR:
#
#   sh deploy/make-secrets.sh DIR NAME...
#   sh deploy/make-secrets.sh deploy/compose/secrets shop_secret shop_upstream_secret shop_path redis_password
#
# Each is 64 characters of A-Z a-z 0-9 _ - (what Telegram allows in a secret_token, and safe in a
# URL path), without a trailing newline. A name ending in _credential (a bot's egress credential,
# bots[].egress.credential_file, docs/egress.md) gets the shape of a bot token instead, digits, a
# colon, then those 64 characters, so bot frameworks that check a token's shape accept it; it is
# not the token and works only against botgate's egress. Existing files are kept, so running it
# again never rotates a secret by accident (docs/secrets-rotation.md). The bot's token is not
# random: write it yourself (printf '%s' "$TOKEN" > DIR/shop_bot_token).
#
# The folder is private to you (700); the files in it are readable by anyone who can open the
# folder (644), because containers run as other users (botgate 1000, the example bot 65532,
# Redis 999) and Docker Compose mounts file secrets with the host file's owner and mode.
set -eu
[ "$#" -ge 2 ] || { echo "usage: $0 DIR NAME..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
chmod 700 "$dir"
for name in "$@"; do
  file="$dir/$name"
  if [ -e "$file" ]; then
    echo "kept  $file"
    continue
  fi
  # 48 random bytes in base64url: 64 characters, no padding, no newline.
  random=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  case $name in
    # A random number of up to 10 digits in front, as a bot id is (od prints 4 bytes unsigned).
    *_credential) printf '%s:%s' "$(head -c 4 /dev/urandom | od -An -tu4 | tr -d ' \n')" "$random" > "$file" ;;
    *) printf '%s' "$random" > "$file" ;;
  esac
  chmod 644 "$file"
  echo "wrote $file"
done
