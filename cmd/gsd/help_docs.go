package main

// The help of the commands that predate commandDoc; newer commands
// document themselves in their own files.

var pathArg = [2]string{"PATH", "configuration directories or *.hcl files (default: the current directory)"}

func init() {
	document("init", commandDoc{args: "[DIR]",
		text:      `Write a commented starter gsd.hcl: one host, one build and one service, with every block explained. It never overwrites a file.`,
		arguments: [][2]string{{"DIR", "where to write gsd.hcl, created if missing (default: the current directory)"}},
		examples:  []string{"gsd init", "gsd init deploy/"}})
	document("validate", commandDoc{args: "[PATH...]",
		text: `Check the configuration and report every problem at once, each as file:line:col with the source line. ` +
			`Variables without a value are treated as unknown, so no secret is needed; exit 1 when there is an error.`,
		arguments: [][2]string{pathArg},
		examples:  []string{"gsd validate", "gsd validate -json deploy/ > diagnostics.json", "gsd validate -var-file prod.gsdvars"}})
	document("fmt", commandDoc{args: "[PATH... | -]",
		text: `Rewrite configuration and variable files in canonical layout, keeping comments. ` +
			`A file that does not parse is reported and left alone; files are replaced atomically.`,
		arguments: [][2]string{{"PATH", "files or directories to format (default: the current directory); - reads standard input and writes standard output"}},
		examples:  []string{"gsd fmt", "gsd fmt -check -diff -recursive .", "cat gsd.hcl | gsd fmt -"}})
	document("plan", commandDoc{args: "[PATH...]",
		text: `Build every binary (cached by inputs), read every host's facts in one agent round trip each, ` +
			`and show what gsd apply would change, host by host, with the rollout batches. It changes nothing on any host. ` +
			`-out saves the plan (without secrets) for gsd apply FILE, which refuses it once the configuration, ` +
			`an artifact or a host has changed.`,
		arguments: [][2]string{pathArg},
		examples: []string{"gsd plan", "gsd plan -out release.plan -var version=1.4.2",
			"gsd plan -target service.api -host web1 -detailed-exitcode"}})
	document("apply", commandDoc{args: "[PLANFILE | PATH...]",
		text: `Carry out a plan: the one saved with gsd plan -out, or one made now and shown first (it asks for 'yes' unless -auto-approve). ` +
			`On each host with work it takes the lock, uploads what the host lacks and stages every release; then it rolls out ` +
			`one service at a time, batch by batch, behind health checks, and rolls back what fails. ` +
			`The first Ctrl-C stops after the steps in flight, the second aborts them.`,
		arguments: [][2]string{{"PLANFILE", "a plan saved with gsd plan -out"}, pathArg},
		examples: []string{"gsd apply", "gsd plan -out release.plan && gsd apply release.plan",
			"gsd apply -auto-approve -json -skip-unreachable > events.jsonl"}})
	document("destroy", commandDoc{args: "[PATH...]",
		text: `Remove the services and tasks gsd manages on the configuration's hosts, with their firewall rules and event log sources ` +
			`(only those named with -target), after showing the plan and asking for 'yes'. A service gsd did not create is never touched.`,
		arguments: [][2]string{pathArg},
		examples:  []string{"gsd destroy", "gsd destroy -target service.api -auto-approve"}})
	document("status", commandDoc{args: "[PATH...]",
		text: `Show what runs where: per host, each service's release and the previous one, its state, its health now, ` +
			`since when it runs, restarts of a wrapped program, and its drift from the configuration; ` +
			`each task's state, last run and result, and next run.`,
		arguments: [][2]string{pathArg},
		examples:  []string{"gsd status", "gsd status -json -target service.api"}})
	document("logs", commandDoc{args: "SERVICE [PATH...]",
		text: `Print the end of a service's log from each of its hosts: a wrapped service's output, or a native service's ` +
			`entries in the Windows event log; with -f keep printing new lines until Ctrl-C.`,
		arguments: [][2]string{{"SERVICE", "the service, as NAME or service.NAME"}, pathArg},
		examples:  []string{"gsd logs api", "gsd logs api -host web1 -n 20 -f"}})
	document("releases", commandDoc{args: "service.NAME [PATH...]",
		text: `List the releases each host keeps of a service, the active one marked, with version, id, ` +
			`when and by whom it was activated, and what it changed.`,
		arguments: [][2]string{{"service.NAME", "the service"}, pathArg},
		examples:  []string{"gsd releases service.api", "gsd releases service.api -host web1 -json"}})
	document("rollback", commandDoc{args: "service.NAME [PATH...]",
		text: `Switch a service back to the release before its active one (or the one -to names), ` +
			`batch by batch with health checks as its rollout block says. Nothing is built or uploaded: the releases are on the hosts.`,
		arguments: [][2]string{{"service.NAME", "the service"}, pathArg},
		examples:  []string{"gsd rollback service.api", "gsd rollback service.api -to 1.4.1 -host web1 -auto-approve"}})
	document("version", commandDoc{
		text:     `Print gsd's version, the commit it was built from, its platform and Go version, and the agent it installs: embedded (its SHA-256) or built from source on first use.`,
		examples: []string{"gsd version"}})
	document("hosts", commandDoc{
		text:        `Work with the configuration's hosts.`,
		subcommands: []string{"check"},
		examples:    []string{"gsd hosts check", "gsd hosts check -json -host web1"}})
	document("hosts check", commandDoc{args: "[PATH...]",
		text: `Reach every host, install or upgrade its agent, and read its facts: reachability, authentication, ` +
			`TLS trust and the agent's version, per host. Exit 1 when a host cannot be reached.`,
		arguments: [][2]string{pathArg},
		examples:  []string{"gsd hosts check", "gsd hosts check -host web1 -json"}})
	document("sandbox", commandDoc{
		text:        `Local Windows test hosts on Linux: a WS-Management server and Wine per host, each in its own network namespace.`,
		subcommands: []string{"up", "down", "status", "fault"},
		examples:    []string{"gsd sandbox up -n 2 && gsd plan", "gsd sandbox down"}})
	document("sandbox up", commandDoc{
		text:     `Start hosts in the background and write sandbox.hcl and sandbox.auto.gsdvars, so gsd plan in this directory uses them.`,
		examples: []string{"gsd sandbox up", "gsd sandbox up -n 3 -ssh"}})
	document("sandbox down", commandDoc{
		text:     `Stop the sandbox's hosts and remove everything gsd sandbox up made: processes, namespaces, prefixes and files.`,
		examples: []string{"gsd sandbox down"}})
	document("sandbox status", commandDoc{
		text:     `Show the sandbox's hosts, their addresses and whether they answer.`,
		examples: []string{"gsd sandbox status"}})
	document("sandbox fault", commandDoc{args: "HOST",
		text:      `Switch fault injection on a running sandbox host (for transport tests); with no fault flag, switch faults off.`,
		arguments: [][2]string{{"HOST", "the sandbox host's name"}},
		examples:  []string{"gsd sandbox fault -refuse sandbox1", "gsd sandbox fault sandbox1"}})
}
