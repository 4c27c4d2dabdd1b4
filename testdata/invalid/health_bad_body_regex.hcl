service "api" {
  hosts  = ["web1"]
  binary = build.app
  health {
    http       = "http://localhost:8080/healthz"
    body_match = "ok("
  }
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 6:18 Invalid regular expression
