#!/bin/sh
# collect-rootfs.sh DEST
#
# Copies into DEST the smallest tree that runs the `node` installed in this
# (builder) image: the binary, every shared library it links (the dynamic
# loader included), the JavaScript files a distro's node loads from disk,
# the CA bundle, and /etc/passwd + /etc/group with the runtime user.
# Works on Alpine (musl, apk) and Debian (glibc, apt) builders; POSIX sh,
# because Alpine has no bash.
set -eu

dest="${1:?usage: collect-rootfs.sh DEST}"
# The runtime user. Fixed ids, so images built on this base can COPY
# --chown=1000:1000 without a passwd lookup, and match the official node
# images' `node` user.
user=node
uid=1000
gid=1000

node_bin="$(command -v node)"
node_bin="$(readlink -f "$node_bin")"

mkdir -p "$dest"
# Recreate merged-/usr symlinks (Debian: /lib -> usr/lib) so a library
# reached by two paths is stored once, and the loader's paths still work.
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then
        target="$(readlink "/$d")"
        # The target must exist, or mkdir -p through the link fails.
        case "$target" in
            /*) mkdir -p "$dest$target" ;;
            *) mkdir -p "$dest/$target" ;;
        esac
        ln -s "$target" "$dest/$d"
    fi
done

# Copy a file to the same path under DEST, resolving symlinks into a real
# file (library sonames are symlinks to versioned files).
copy_file() {
    mkdir -p "$dest$(dirname "$1")"
    cp -L "$1" "$dest$1"
}

mkdir -p "$dest/usr/bin"
cp "$node_bin" "$dest/usr/bin/node"

# Shared libraries: every absolute path ldd prints. Lines look like
# "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or, for the loader,
# "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
libs="$(ldd "$node_bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)"
[ -n "$libs" ] || { echo "collect-rootfs: ldd found no libraries for $node_bin" >&2; exit 1; }
for lib in $libs; do
    copy_file "$lib"
done

# Debian's node is built against system copies of acorn, cjs-module-lexer
# and undici, and loads them by absolute path at run time (without them it
# aborts at start). Copy exactly the files the binary names (~2 MB), not the
# whole /usr/share/nodejs. Alpine's node embeds them: nothing found there.
# shellcheck disable=SC2086 # $libs is a list of paths without spaces
js_files="$(cat "$node_bin" $libs | grep -a -o '/usr/share/nodejs/[A-Za-z0-9_./@-]*\.js' | sort -u || true)"
for f in $js_files; do
    if [ -f "$f" ]; then copy_file "$f"; else echo "collect-rootfs: warning: $f named by node but missing" >&2; fi
done

# ICU data loaded by path rather than linked (Alpine's icu-data-* packages).
if [ -d /usr/share/icu ]; then
    mkdir -p "$dest/usr/share"
    cp -a /usr/share/icu "$dest/usr/share/"
fi

# CA bundle: only the concatenated file, not the per-certificate links. It
# holds whatever the builder trusts, extra CAs of the build machine included.
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/ssl/cert.pem; do
    if [ -f "$bundle" ]; then
        mkdir -p "$dest/etc/ssl/certs"
        cp -L "$bundle" "$dest/etc/ssl/certs/ca-certificates.crt"
        break
    fi
done

# glibc resolves hosts through nsswitch.conf (files, then dns); musl needs
# none. /etc/hosts and /etc/resolv.conf are provided by the engine.
if [ -f /etc/nsswitch.conf ]; then
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$dest/etc/nsswitch.conf"
fi

# Users: root (owner of everything) and the runtime user, no login shells.
mkdir -p "$dest/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\n%s:x:%s:%s:%s:/home/%s:/sbin/nologin\n' \
    "$user" "$uid" "$gid" "$user" "$user" >"$dest/etc/passwd"
printf 'root:x:0:\n%s:x:%s:\n' "$user" "$gid" >"$dest/etc/group"

mkdir -p "$dest/tmp" "$dest/home/$user" "$dest/root"
chmod 1777 "$dest/tmp"
chown "$uid:$gid" "$dest/home/$user"
chmod 700 "$dest/root"

# The packages manifest: which OS package (and version) each collected file
# comes from, so `imgopt base build` can report what the image holds
# although it has no package database. Files made here (passwd, the CA
# bundle, nsswitch.conf) belong to no package and are not listed.
owner() {
    if command -v apk >/dev/null 2>&1; then
        # "/usr/bin/node is owned by nodejs-18.20.1-r0"
        apk info --who-owns "$1" 2>/dev/null | sed -n 's/.* is owned by //p'
    else
        # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"; merged /usr means
        # dpkg may know the file under the other spelling of its path.
        for p in "$1" "/usr$1" "${1#/usr}"; do
            pkg="$(dpkg -S "$p" 2>/dev/null | grep -v '^diversion' | head -n1 | cut -d: -f1)"
            if [ -n "$pkg" ]; then
                printf '%s %s\n' "$pkg" "$(dpkg-query -W -f='${Version}' "$pkg")"
                return
            fi
        done
    fi
}
manifest="$dest/usr/share/node-base/packages.txt"
mkdir -p "$(dirname "$manifest")"
(
    cd "$dest"
    find . -type f | sed 's|^\.||' | while read -r f; do owner "$f"; done
) | sort -u >"$manifest.tmp"
{
    echo "# OS packages the files of this image come from: name version"
    cat "$manifest.tmp"
} >"$manifest"
rm "$manifest.tmp"
[ "$(grep -vc '^#' "$manifest")" -gt 0 ] || { echo "collect-rootfs: no package owns any collected file" >&2; exit 1; }

echo "collect-rootfs: $(du -sh "$dest" | cut -f1) in $dest" >&2
