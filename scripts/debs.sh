# Sourced by scripts/demo.sh and model/training-data.sh: fetch_deb DIR PACKAGE downloads a Debian package
# (apt-get download: no install, no root needed) into DIR once, unpacks it to DIR/PACKAGE and prints that path.
fetch_deb() {
  local dir="$1" pkg="$2" tree="$1/$2"
  if [[ ! -d "$tree" ]]; then
    ( cd "$dir" && apt-get download "$pkg" > /dev/null 2>&1 ) || {
      apt-get update -qq > /dev/null 2>&1 || true
      ( cd "$dir" && apt-get download "$pkg" > /dev/null )
    }
    dpkg-deb -x "$(ls "$dir"/"${pkg}"_*.deb | head -1)" "$tree"
  fi
  echo "$tree"
}
