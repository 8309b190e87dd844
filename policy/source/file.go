package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/temporal-opa/temporal-opa/policy"
)

// k8sDataLink is the symlink through which a Kubernetes ConfigMap or Secret
// volume exposes its current files; the kubelet flips it atomically.
const k8sDataLink = "..data"

// maxSymlinks bounds a symlink chain.
const maxSymlinks = 40

// File is a bundle directory or `opa build` tarball on disk, watched for
// changes. Create it with [NewFile].
type File struct {
	name   string
	path   string
	sink   Sink
	t      *tracker
	w      *fsnotify.Watcher
	wait   time.Duration
	cancel context.CancelFunc // stops the watch loop
	done   chan struct{}      // closed when the watch loop has returned
	close  sync.Once

	// Owned by the watch loop after NewFile returns.
	watched map[string]bool
	lastFP  string // fingerprint of the files last loaded
}

var _ Source = (*File)(nil)

// NewFile loads the bundle at path (a directory or a tarball), gives it to sink
// under name, and watches path for changes until Close. The first load and
// activation happen before NewFile returns; their error is returned (wrapping
// the sink's error, a *policy.ActivationError for a *policy.Authorizer) and no
// watch is left running. ctx bounds the first activation only.
func NewFile(ctx context.Context, sink Sink, name, path string, opts Options) (*File, error) {
	if name == "" {
		return nil, errors.New("bundle source: empty bundle name")
	}
	if path == "" {
		return nil, fmt.Errorf("bundle %s: empty path", name)
	}
	if sink == nil {
		return nil, fmt.Errorf("bundle %s: nil sink", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", name, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: watch %s: %w", name, abs, err)
	}
	f := &File{
		name:    name,
		path:    abs,
		sink:    sink,
		t:       newTracker(opts.logger(), name, KindFile, abs, opts.OnLoadError),
		w:       w,
		wait:    opts.debounce(),
		done:    make(chan struct{}),
		watched: map[string]bool{},
	}
	// Watch before the first load, so that a change made while it runs is seen.
	if err := f.reload(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(loopCtx)
	return f, nil
}

// Name implements Source.
func (f *File) Name() string { return f.name }

// Status implements Source.
func (f *File) Status() Status { return f.t.status() }

// WaitReady returns at once: NewFile activated the bundle.
func (f *File) WaitReady(ctx context.Context) error { return f.t.waitReady(ctx) }

// Close stops watching. The bundle stays active in the sink.
func (f *File) Close() error {
	var err error
	f.close.Do(func() {
		f.cancel()
		<-f.done
		err = f.w.Close()
	})
	return err
}

// run is the watch loop: it gathers events until they have been quiet for
// f.wait (or have kept coming for 4*f.wait), then reloads.
func (f *File) run(ctx context.Context) {
	defer close(f.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var pending time.Time // first event not yet handled; zero when none
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-f.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			now := time.Now()
			if pending.IsZero() {
				pending = now
			}
			delay := f.wait
			if limit := pending.Add(4 * f.wait); now.Add(delay).After(limit) {
				delay = max(limit.Sub(now), 0)
			}
			timer.Reset(delay)
		case err, ok := <-f.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: reload to be sure.
			f.t.log.Warn("file watch error; reloading the bundle", "error", err)
			if pending.IsZero() {
				pending = time.Now()
			}
			timer.Reset(f.wait)
		case <-timer.C:
			pending = time.Time{}
			_ = f.reload(ctx) // recorded in status and logged
		}
	}
}

// reload re-resolves the path, refreshes the watches, and loads and activates
// the bundle if its files changed since the last load.
func (f *File) reload(ctx context.Context) error {
	real, dirs, err := resolve(f.path)
	f.watch(dirs)
	if err != nil {
		f.lastFP = ""
		err = fmt.Errorf("bundle %s: %w", f.name, err)
		f.t.failed("bundle not loaded; the previous policy stays active", err, false)
		f.t.loadError(err)
		return err
	}
	fp, err := fingerprint(real)
	if err == nil && fp == f.lastFP {
		f.t.checked(false)
		return nil
	}
	f.lastFP = fp
	b, err := policy.LoadBundle(real)
	if err != nil {
		err = fmt.Errorf("bundle %s: %w", f.name, err)
		f.t.failed("bundle not loaded; the previous policy stays active", err, false)
		f.t.loadError(err)
		return err
	}
	if err := f.sink.SetBundle(ctx, f.name, b); err != nil {
		err = fmt.Errorf("bundle %s from %s: %w", f.name, real, err)
		f.t.failed("bundle rejected; the previous policy stays active", err, false)
		return err
	}
	f.t.activated(b, "")
	return nil
}

// watch makes the watched directories exactly dirs (those that exist).
func (f *File) watch(dirs []string) {
	want := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		want[d] = true
		if !f.watched[d] {
			if err := f.w.Add(d); err == nil {
				f.watched[d] = true
			}
		}
	}
	for d := range f.watched {
		if !want[d] {
			_ = f.w.Remove(d) // fails for a directory already deleted
			delete(f.watched, d)
		}
	}
}

// resolve returns the file or directory to load for path, and the directories
// to watch to see it change: the one holding path, the one holding each link of
// path's symlink chain, and every directory of a bundle directory. A directory
// holding a Kubernetes ..data link is read through it. dirs is set on error too.
func resolve(path string) (real string, dirs []string, err error) {
	dirs = []string{filepath.Dir(path)}
	cur := path
	for range maxSymlinks {
		fi, err := os.Lstat(cur)
		if err != nil {
			return "", dirs, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", dirs, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cur), target)
		}
		cur = filepath.Clean(target)
		dirs = append(dirs, filepath.Dir(cur))
	}
	if real, err = filepath.EvalSymlinks(path); err != nil {
		return "", dirs, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", dirs, err
	}
	if !fi.IsDir() {
		return real, append(dirs, filepath.Dir(real)), nil
	}
	if _, err := os.Lstat(filepath.Join(real, k8sDataLink)); err == nil {
		dirs = append(dirs, real)
		if real, err = filepath.EvalSymlinks(filepath.Join(real, k8sDataLink)); err != nil {
			return "", dirs, err
		}
	}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Sort(dirs)
	return real, slices.Compact(dirs), err
}

// fingerprint identifies the content of a bundle tarball or directory by the
// names, sizes and modification times of the files a bundle reader loads
// (policy tests left out), so that events that changed none of them (a
// temporary file, a chmod) do not reactivate the bundle.
func fingerprint(real string) (string, error) {
	h := sha256.New()
	add := func(p string, fi fs.FileInfo) {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		add(real, fi)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !bundleFile(d.Name()) {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		add(p, fi)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// bundleFile reports whether a bundle reader loads a file of this name.
func bundleFile(name string) bool {
	if strings.HasSuffix(name, "_test.rego") {
		return false
	}
	switch filepath.Ext(name) {
	case ".rego", ".json", ".yaml", ".yml", ".wasm", ".manifest":
		return true
	}
	return name == "plan.json"
}
