service "api" {
  hosts  = ["web1"]
  binary = build.app
  file "config.yaml" {
    on_change = "reload"
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

# ERROR: 4:3 Missing file contents
