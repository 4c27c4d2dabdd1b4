# gsd.hcl: the Go services you deploy and the Windows hosts they run on.
#
#   gsd validate    check this file
#   gsd plan        build, read the hosts, and show what would change
#   gsd apply       carry the plan out
#
# Secrets come from variables marked sensitive. Set them with -var-file,
# a *.auto.gsdvars file kept out of version control, or an environment
# variable such as GSD_VAR_winrm_password. gsd never prints them.
variable "winrm_password" {
  type        = string
  sensitive   = true
  description = "Password of the deploy account on the hosts."
}

variable "version" {
  type        = string
  default     = "0.1.0"
  description = "Release label shown in plans and status."
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }

  # WinRM as a stock Windows Server takes it after Enable-PSRemoting:
  # HTTP on 5985, NTLM, every message encrypted with the session key.
  # The account must be an administrator on the host.
  winrm {
    user     = "deploy"
    password = var.winrm_password
    # https   = true           # use the host's HTTPS listener (5986) instead
    # ca_cert = "certs/ca.pem" # with https: trust a private CA instead of the system pool
  }
}

# Cross-compile a Go package for the hosts; dir is relative to this file.
build "hello" {
  package = "./cmd/hello"
  ldflags = "-s -w -X main.version=${var.version}"
}

service "hello" {
  hosts        = { role = "web" } # or a list of host names: ["web1"]
  binary       = build.hello      # or a path to a prebuilt .exe
  version      = var.version
  display_name = "Hello"
  description  = "Says hello over HTTP."
  args         = ["-listen", ":8080"]
  start        = "auto" # auto | delayed | manual | disabled

  health {
    http    = "http://localhost:8080/healthz"
    timeout = "60s"
  }

  rollout {
    max_parallel = 1
  }
}
