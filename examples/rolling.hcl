# An API on three hosts, upgraded one host at a time behind an HTTP
# health check. The first host is a canary: the rest wait until it is
# healthy, and a failed host is rolled back to its previous release.

variable "winrm_password" {
  type      = string
  sensitive = true
}

variable "version" {
  type    = string
  default = "2.3.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.version))
    error_message = "version must look like 1.2.3."
  }
}

locals {
  api_port = 8080
}

host "api1" {
  address = "api1.example.internal"
  labels  = { role = "api", zone = "a" }
  winrm {
    https    = true # the hosts have an HTTPS listener with a certificate from a private CA
    user     = "deploy"
    password = var.winrm_password
    ca_cert  = "certs/ca.pem"
  }
}

host "api2" {
  address = "api2.example.internal"
  labels  = { role = "api", zone = "b" }
  winrm {
    https    = true # the hosts have an HTTPS listener with a certificate from a private CA
    user     = "deploy"
    password = var.winrm_password
    ca_cert  = "certs/ca.pem"
  }
}

host "api3" {
  address = "api3.example.internal"
  labels  = { role = "api", zone = "c" }
  winrm {
    https    = true # the hosts have an HTTPS listener with a certificate from a private CA
    user     = "deploy"
    password = var.winrm_password
    ca_cert  = "certs/ca.pem"
  }
}

build "api" {
  package = "./services/hello"
  ldflags = "-s -w -X main.version=${var.version}"
}

service "api" {
  hosts        = { role = "api" }
  binary       = build.api
  version      = var.version
  display_name = "Orders API"
  description  = "Serves /orders"
  args         = ["-listen", "127.0.0.1:${local.api_port}"]
  depends_on   = ["Tcpip"]
  env          = { GOMAXPROCS = "4" }

  health {
    http          = "http://127.0.0.1:${local.api_port}/healthz"
    body_match    = "ok"
    interval      = "1s"
    timeout       = "60s"
    healthy_after = "5s"
  }

  rollout {
    max_parallel   = 1
    canary         = 1
    max_failures   = 0
    auto_rollback  = true
    rollback_scope = "batch"
    pause          = "5s"
  }
}
