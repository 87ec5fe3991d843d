package tui

import (
	"fmt"
	"image/color"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
	"github.com/openvcpe/vcpe/tui/pages"
)

// pageID names the wizard's pages, in flow order.
type pageID int

const (
	pageWelcome pageID = iota
	pagePrecheck
	pageRegister
	pageRoutes
	pageReview
	pageApply
	pageConnectivity
	pageDone
	pageCount
	// Pages shown within a step, numbered as the step in the header.
	pageInterfaces // after routes, when the host's interfaces are known
	pageAttach     // after registration, when the instance may have two devices
	pageLockout    // before review, when the plan would capture a protected address
)

// number is the page's position in the flow, for the header.
func (p pageID) number() int {
	switch p {
	case pageInterfaces, pageAttach:
		return int(pageRoutes) + 1
	case pageLockout:
		return int(pageReview) + 1
	}
	return int(p) + 1
}

// Messages from the Engine's goroutine (through the Bridge) into the
// program.
type (
	// engineEventMsg is one Engine event.
	engineEventMsg struct{ Event provision.Event }
	// engineDoneMsg is the Engine's result; it is the last message the
	// Engine's goroutine sends.
	engineDoneMsg struct {
		Summary provision.Summary
		Err     error
	}
	// precheckPromptMsg asks the operator about the precheck report.
	precheckPromptMsg struct {
		Report precheck.Report
		reply  chan<- provision.PrecheckDecision
	}
	// registrationPromptMsg asks for the registration and the routes.
	registrationPromptMsg struct {
		Suggestions provision.Suggestions
		reply       chan<- provision.Registration
	}
	// confirmPromptMsg asks to accept the plan.
	confirmPromptMsg struct {
		Plan  provision.Plan
		reply chan<- bool
	}
	// attachPromptMsg asks for the multi-attach settings.
	attachPromptMsg struct {
		Question provision.AttachQuestion
		reply    chan<- provision.Attach
	}
	// lockoutPromptMsg asks whether to override the lockout guard.
	lockoutPromptMsg struct {
		Err   provision.LockoutError
		reply chan<- bool
	}
	// quitRequestMsg asks to quit; force skips the question (a signal, the
	// caller's context ended).
	quitRequestMsg struct{ force bool }
)

// Model is the wizard's root model: it switches pages, routes the Engine's
// events and prompts to them, and owns quitting. It does no install work:
// start and cancel are handed in by Run.
type Model struct {
	page pageID

	welcome  *pages.Welcome
	precheck *pages.Precheck
	register *pages.Register
	routes   *pages.Routes
	ifaces   *pages.Interfaces
	attach   *pages.Attach
	lockout  *pages.Lockout
	review   *pages.Review
	apply    *pages.Apply
	conn     *pages.Connectivity
	done     *pages.Done

	keys    components.KeyMap
	profile colorprofile.Profile
	isDark  bool
	styles  components.Styles
	help    help.Model
	spinner spinner.Model
	animate bool // spinner ticks (off in tests, for stable frames)
	width   int
	height  int

	start  func() // starts the Engine
	cancel func() // cancels the Engine's context; it then rolls back

	engineStarted bool
	engineDone    bool
	applying      bool // the plan was accepted: host changes may be in flight
	askQuit       bool // "quit now?" is showing
	quitting      bool // cancelled; waiting for the Engine's rollback
	exitOK        bool // tea.Quit was issued by the model

	precheckReply chan<- provision.PrecheckDecision
	regReply      chan<- provision.Registration
	confirmReply  chan<- bool
	attachReply   chan<- provision.Attach
	lockoutReply  chan<- bool
	sugg          provision.Suggestions
	reg           provision.Registration // the answers (the key is dropped once sent)
	plan          *provision.Plan

	Summary provision.Summary
	Err     error
}

// newModel builds the root model. start and cancel may be nil (tests).
func newModel(profile colorprofile.Profile, start, cancel func()) *Model {
	m := &Model{
		welcome:  &pages.Welcome{},
		precheck: pages.NewPrecheck(),
		apply:    pages.NewApply(),
		conn:     &pages.Connectivity{},
		done:     &pages.Done{},
		keys:     DefaultKeyMap(),
		profile:  profile,
		isDark:   true,
		help:     help.New(),
		spinner:  spinner.New(spinner.WithSpinner(spinner.Line)),
		width:    80,
		height:   24,
		start:    start,
		cancel:   cancel,
	}
	m.restyle()
	return m
}

func (m *Model) restyle() {
	m.styles = newStyles(m.profile, m.isDark)
	if hasColour(m.profile) {
		m.help.Styles = help.DefaultStyles(m.isDark)
	} else {
		m.help.Styles = help.Styles{
			ShortKey: lipgloss.NewStyle().Bold(true), ShortDesc: lipgloss.NewStyle(), ShortSeparator: lipgloss.NewStyle(),
			Ellipsis: lipgloss.NewStyle(), FullKey: lipgloss.NewStyle().Bold(true), FullDesc: lipgloss.NewStyle(), FullSeparator: lipgloss.NewStyle(),
		}
	}
}

// Init asks for the background colour (light or dark) and starts the
// spinner.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{tea.RequestBackgroundColor}
	if m.animate {
		cmds = append(cmds, m.spinner.Tick)
	}
	return tea.Batch(cmds...)
}

func (m *Model) current() pages.Page {
	switch m.page {
	case pagePrecheck:
		return m.precheck
	case pageRegister:
		return m.register
	case pageRoutes:
		return m.routes
	case pageInterfaces:
		return m.ifaces
	case pageAttach:
		return m.attach
	case pageLockout:
		return m.lockout
	case pageReview:
		return m.review
	case pageApply:
		return m.apply
	case pageConnectivity:
		return m.conn
	case pageDone:
		return m.done
	}
	return m.welcome
}

// frame is the area pages draw in: the screen less the header (2 lines)
// and the status and help lines (2).
func (m *Model) frame() pages.Frame {
	return pages.Frame{Styles: m.styles, Keys: m.keys, Spin: m.spinner.View(), Width: m.width, Height: max(m.height-4, 1)}
}

// formPage is true on pages where letters are typed (q must not quit).
func (m *Model) formPage() bool {
	switch m.page {
	case pageRegister, pageRoutes, pageInterfaces, pageAttach:
		return true
	}
	return m.page == pageDone && m.done.Saving()
}

func (m *Model) quit() tea.Cmd {
	m.exitOK = true
	return tea.Quit
}

// Update routes a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width)
		var cmds []tea.Cmd
		for _, p := range m.forms() {
			cmds = append(cmds, p.Update(msg, m.frame()))
		}
		return m, tea.Batch(cmds...)
	case spinner.TickMsg:
		if !m.animate {
			return m, nil
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return m, cmd
	case tea.BackgroundColorMsg:
		m.isDark = msg.IsDark()
		m.restyle()
		var cmds []tea.Cmd
		for _, p := range m.forms() {
			cmds = append(cmds, p.Update(msg, m.frame()))
		}
		return m, tea.Batch(cmds...)
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case quitRequestMsg:
		return m, m.requestQuit(msg.force)
	case engineEventMsg:
		return m, m.event(msg.Event)
	case engineDoneMsg:
		return m, m.engineFinished(msg)
	case precheckPromptMsg:
		m.precheck.Ask(msg.Report)
		m.precheckReply = msg.reply
		m.page = pagePrecheck
		return m, nil
	case registrationPromptMsg:
		colour := hasColour(m.profile)
		m.register = pages.NewRegister(msg.Suggestions.Given, colour)
		m.routes = pages.NewRoutes(msg.Suggestions, colour)
		m.regReply = msg.reply
		m.sugg = msg.Suggestions
		m.page = pageRegister
		// The forms learn the size and the background (light or dark) now;
		// the terminal told the root model before they existed.
		for _, p := range m.forms() {
			p.Update(tea.WindowSizeMsg{Width: m.width, Height: m.height}, m.frame())
			p.Update(m.background(), m.frame())
		}
		return m, m.register.Init()
	case attachPromptMsg:
		m.attach = pages.NewAttach(msg.Question, hasColour(m.profile))
		m.attachReply = msg.reply
		m.page = pageAttach
		return m, m.initForm(m.attach)
	case lockoutPromptMsg:
		m.lockout = pages.NewLockout(msg.Err)
		m.lockoutReply = msg.reply
		m.page = pageLockout
		return m, nil
	case confirmPromptMsg:
		m.plan = &msg.Plan
		m.review = pages.NewReview(msg.Plan)
		m.confirmReply = msg.reply
		m.page = pageReview
		return m, nil

	case pages.StartMsg:
		if m.engineStarted {
			return m, nil
		}
		m.engineStarted = true
		m.page = pagePrecheck
		m.precheck.Running()
		if m.start != nil {
			m.start()
		}
		return m, nil
	case pages.PrecheckDecisionMsg:
		if m.precheckReply != nil {
			m.precheckReply <- msg.Decision
			m.precheckReply = nil
		}
		if msg.Decision == provision.PrecheckRerun {
			m.precheck.Running() // the checks run again now
		}
		return m, nil
	case pages.RegisterDoneMsg:
		m.reg = msg.Reg
		m.page = pageRoutes
		return m, m.routes.Init()
	case pages.RoutesDoneMsg:
		m.reg.Advertise = msg.Prefixes
		if len(m.sugg.Interfaces) > 0 {
			m.ifaces = pages.NewInterfaces(m.sugg, msg.Prefixes, hasColour(m.profile))
			m.page = pageInterfaces
			return m, m.initForm(m.ifaces)
		}
		m.sendRegistration()
		return m, nil
	case pages.InterfacesDoneMsg:
		m.reg.WANInterface, m.reg.LANInterface = msg.WAN, msg.LAN
		m.sendRegistration()
		return m, nil
	case pages.AttachDoneMsg:
		m.reg.LANGateway, m.reg.LANTargets = msg.Attach.LANGateway, msg.Attach.LANTargets
		if m.attachReply != nil {
			m.attachReply <- msg.Attach
			m.attachReply = nil
		}
		m.page = pageApply
		return m, nil
	case pages.LockoutDoneMsg:
		if m.lockoutReply != nil {
			m.lockoutReply <- msg.Force
			m.lockoutReply = nil
		}
		m.page = pageApply
		return m, nil
	case pages.ReviewDoneMsg:
		if m.confirmReply != nil {
			m.confirmReply <- msg.Accept
			m.confirmReply = nil
		}
		m.applying = msg.Accept
		m.page = pageApply
		return m, nil
	case pages.FinishMsg:
		if m.page == pageConnectivity {
			m.page = pageDone
			return m, nil
		}
		return m, m.quit()
	}
	// Everything else (the forms' own messages, cursor blinks) goes to the
	// page shown.
	return m, m.current().Update(msg, m.frame())
}

// sendRegistration hands the answers to the Engine and drops the key.
func (m *Model) sendRegistration() {
	if m.regReply != nil {
		m.regReply <- m.reg
		m.regReply = nil
	}
	m.reg.Key = provision.Secret{} // the Engine has it now
	m.page = pageApply
}

// initForm gives a form built late the size and background (the terminal
// told the root model before it existed) and starts it.
func (m *Model) initForm(p interface {
	pages.Page
	Init() tea.Cmd
}) tea.Cmd {
	p.Update(tea.WindowSizeMsg{Width: m.width, Height: m.height}, m.frame())
	p.Update(m.background(), m.frame())
	return p.Init()
}

// forms are the pages built around huh forms, once they exist: they need
// every size and background message, shown or not.
func (m *Model) forms() []pages.Page {
	var out []pages.Page
	if m.register != nil {
		out = append(out, m.register)
	}
	if m.routes != nil {
		out = append(out, m.routes)
	}
	if m.ifaces != nil {
		out = append(out, m.ifaces)
	}
	if m.attach != nil {
		out = append(out, m.attach)
	}
	return out
}

// answers are the operator's answers as install input, for the done
// page's config file; nil before the registration was answered.
func (m *Model) answers() *provision.InstallInput {
	r := m.reg
	if r.SN == "" {
		return nil
	}
	in := &provision.InstallInput{Controller: r.Controller, ControllerFingerprint: r.Fingerprint, SN: r.SN,
		WANInterface: r.WANInterface, LANInterface: r.LANInterface}
	for _, p := range r.Advertise {
		in.Advertise = append(in.Advertise, p.String())
	}
	if r.LANGateway.IsValid() {
		in.LANGateway = r.LANGateway.String()
	}
	for _, t := range r.LANTargets {
		in.LANTargets = append(in.LANTargets, t.String())
	}
	if m.plan != nil {
		in.StateDir = m.plan.StateDir
	}
	return in
}

// background is the terminal background as a message for late-built forms.
func (m *Model) background() tea.BackgroundColorMsg {
	if m.isDark {
		return tea.BackgroundColorMsg{Color: color.Black}
	}
	return tea.BackgroundColorMsg{Color: color.White}
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	if m.askQuit {
		switch {
		case key.Matches(k, m.keys.Yes), k.String() == "ctrl+c":
			// A second ctrl+c confirms, as in most terminal programs.
			m.askQuit = false
			return m.requestQuit(true)
		case key.Matches(k, m.keys.No), key.Matches(k, m.keys.Quit):
			m.askQuit = false
		}
		return nil
	}
	if m.quitting {
		return nil
	}
	if k.String() == "ctrl+c" || (!m.formPage() && key.Matches(k, m.keys.Quit) && m.page != pageDone) {
		return m.requestQuit(false)
	}
	return m.current().Update(k, m.frame())
}

// requestQuit quits at once when the Engine is not running; otherwise it
// asks first (unless forced), then cancels the Engine and waits for its
// rollback to finish.
func (m *Model) requestQuit(force bool) tea.Cmd {
	if !m.engineStarted || m.engineDone {
		return m.quit()
	}
	if m.quitting {
		return nil
	}
	if !force {
		m.askQuit = true
		return nil
	}
	m.quitting = true
	if m.applying {
		m.page = pageApply
	}
	if m.cancel != nil {
		m.cancel()
	}
	return nil
}

func (m *Model) event(ev provision.Event) tea.Cmd {
	switch ev.Step {
	case provision.StepPrecheck:
		switch d := ev.Data.(type) {
		case precheck.Result:
			m.precheck.SetResult(d)
		case *precheck.Result:
			m.precheck.SetResult(*d)
		case precheck.Report:
			for _, r := range d.Checks {
				m.precheck.SetResult(r)
			}
		case *precheck.Report:
			for _, r := range d.Checks {
				m.precheck.SetResult(r)
			}
		}
		if ev.Kind == provision.EventStarted {
			m.precheck.Running()
		}
		return nil
	case provision.StepConnectivity:
		for _, p := range probesOf(ev.Data, ev.Message) {
			m.conn.SetProbe(p)
		}
		if m.page == pageApply && !m.quitting && (ev.Kind == provision.EventStarted || ev.Kind == provision.EventProgress) {
			m.page = pageConnectivity
		}
	}
	m.apply.Event(ev)
	return nil
}

// probesOf reads probe results from an event's Data; a bare diag.Result
// takes the event's message as its label.
func probesOf(data any, label string) []components.Probe {
	switch d := data.(type) {
	case components.Probe:
		return []components.Probe{d}
	case *components.Probe:
		return []components.Probe{*d}
	case []components.Probe:
		return d
	case diag.Result:
		return []components.Probe{bareProbe(d, label)}
	case *diag.Result:
		return []components.Probe{bareProbe(*d, label)}
	}
	return nil
}

// bareProbe names a diag.Result by its label (its target when it has
// none); a result with a summary is a finished series.
func bareProbe(r diag.Result, label string) components.Probe {
	p := components.Probe{Result: r, Done: r.Stats.Sent > 0, Name: label}
	if p.Name == "" {
		p.Name = p.Target()
	}
	return p
}

func (m *Model) engineFinished(msg engineDoneMsg) tea.Cmd {
	m.engineDone = true
	m.Summary, m.Err = msg.Summary, msg.Err
	m.applying = false
	m.askQuit = false
	m.done.Summary, m.done.Err, m.done.Plan, m.done.Probes = msg.Summary, msg.Err, m.plan, m.conn.Probes
	m.done.Answers, m.done.Colour = m.answers(), hasColour(m.profile)
	if a := m.done.Answers; a != nil {
		m.done.SavePath = "vcpe-install-" + a.SN + ".yaml"
	}
	if m.quitting {
		return m.quit()
	}
	if msg.Err == nil && len(m.conn.Probes) > 0 {
		m.conn.Finished = true
		m.page = pageConnectivity
		return nil
	}
	m.page = pageDone
	return nil
}

// View draws the header, the page, a status line and the help line.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

var confirmQuit = key.NewBinding(key.WithKeys("y", "ctrl+c"), key.WithHelp("y/ctrl+c", "quit"))

// minWidth and minHeight are the smallest usable terminal.
const minWidth, minHeight = 50, 14

func (m *Model) render() string {
	s := m.styles
	if m.width < minWidth || m.height < minHeight {
		return ansi.Wrap(fmt.Sprintf("The terminal is %d×%d; the wizard needs at least %d×%d. Enlarge the window, or press ctrl+c to quit.", m.width, m.height, minWidth, minHeight), max(m.width, 10), "")
	}
	p := m.current()
	f := m.frame()
	left := s.Title.Render("vcpe install") + " · " + s.Bold.Render(p.Title())
	right := s.Subtle.Render(fmt.Sprintf("page %d/%d", m.page.number(), int(pageCount)))
	gap := max(m.width-lipgloss.Width(left)-lipgloss.Width(right), 1)
	header := left + strings.Repeat(" ", gap) + right

	body := p.View(f)
	lines := strings.Split(body, "\n")
	for len(lines) < f.Height {
		lines = append(lines, "")
	}
	lines = lines[:f.Height]

	status := ""
	binds := p.Help(f)
	switch {
	case m.askQuit && m.applying:
		status = s.Warn.Render("Quit now? The install stops and every change made so far is undone. (y/n)")
		binds = []key.Binding{confirmQuit, m.keys.No}
	case m.askQuit:
		status = s.Warn.Render("Quit now? The install stops; nothing has been changed yet. (y/n)")
		binds = []key.Binding{confirmQuit, m.keys.No}
	case m.quitting:
		status = s.Running.Render(m.spinner.View() + " Stopping: undoing the changes made so far…")
		binds = nil
	}
	out := []string{ansi.Truncate(header, m.width, "…"), ""}
	out = append(out, lines...)
	out = append(out, ansi.Truncate(status, m.width, "…"), m.help.ShortHelpView(binds))
	return strings.Join(out, "\n")
}
