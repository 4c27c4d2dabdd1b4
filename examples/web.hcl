# A single Go web service on one Windows host, built from source and run
# as a native Windows service.

variable "winrm_password" {
  type      = string
  sensitive = true
}

variable "version" {
  type    = string
  default = "1.0.0"
}

host "web1" {
  address = "web1.example.internal"

  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

build "hello" {
  package = "./services/hello"
  ldflags = "-s -w -X main.version=${var.version}"
}

service "hello" {
  hosts        = ["web1"]
  binary       = build.hello
  version      = var.version
  display_name = "Hello Web"
  description  = "Answers /healthz and says hello."
  args         = ["-listen", "127.0.0.1:8080"]
  start        = "auto"
  stop_timeout = "15s"

  recovery {
    actions     = ["restart/5s", "restart/30s", "none"]
    reset_after = "24h"
  }

  health {
    http          = "http://127.0.0.1:8080/healthz"
    timeout       = "30s"
    healthy_after = "2s"
  }
}
