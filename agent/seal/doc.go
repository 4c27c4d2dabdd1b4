// Package seal protects the secret values of kept releases (account
// passwords, environment values, sensitive files and arguments) at rest on
// the host. On Windows they are sealed for the machine with DPAPI
// (CryptProtectData, local-machine scope), so that only code running on
// that machine can open them and a copied disk or backup cannot; elsewhere
// (tests, agents run outside Windows) with AES-256-GCM under a key file
// the agent keeps in its own root.
package seal
